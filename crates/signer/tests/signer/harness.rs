//! Running the real `clawfirst-signer` binary against a real key backend, and talking to it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use clawfirst_core::grant::GrantSigner;
use clawfirst_core::secret::SecretString;
use clawfirst_core::signer_proto::{SignerRequest, SignerResponse};
use clawfirst_core::{Address, KeyId};
use clawfirst_signer::backend::dangerous_dev_keyfile::{self, KdfParams};

pub type Error = Box<dyn std::error::Error>;
pub type TestResult = Result<(), Error>;

/// The signer binary built for this test run.
pub const BIN: &str = env!("CARGO_BIN_EXE_clawfirst-signer");

/// Argon2 costs small enough for tests; the format and code path are the production ones.
pub const TEST_KDF: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

pub const PASSPHRASE: &str = "test passphrase: correct horse battery staple";
pub const PIN: &str = "864213";
pub const TOKEN_LABEL: &str = "clawfirst-test";
pub const KEY_LABEL: &str = "wallet";

/// Which key backend a signer runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Keyfile,
    Pkcs11,
}

/// The SoftHSM2 module, overridable for machines that install it elsewhere.
pub fn softhsm_module() -> PathBuf {
    std::env::var_os("CLAWFIRST_TEST_PKCS11_MODULE").map_or_else(
        || PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"),
        PathBuf::from,
    )
}

/// Writes `text` to a file only its owner may read, as the signer demands of secrets.
pub fn write_secret(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// A `[[keys]]` section's backend lines, the wallet address, and the environment it needs.
type KeySection = (String, Address, Vec<(String, PathBuf)>);

/// A configured key backend in a temporary directory, not yet served.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub key_id: KeyId,
    pub wallet: Address,
    pub grants: GrantSigner,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub database: PathBuf,
    /// Environment the signer needs (SoftHSM's configuration).
    pub env: Vec<(String, PathBuf)>,
    /// The signer's `RUST_LOG`.
    log_filter: String,
}

/// A floor far above anything the suite signs, for cases that do not test the floor.
pub const GENEROUS_FLOOR: &str = "[floor.per_transaction]\nSOL = \"1000000 SOL\"\n\
     USDC = \"1000000000 USDC\"\nBONK = \"1000000000000 BONK\"\n\n[floor.daily]\n\
     SOL = \"1000000 SOL\"\nUSDC = \"1000000000 USDC\"\nBONK = \"1000000000000 BONK\"\n";

impl Setup {
    pub fn new(backend: Backend) -> Result<Setup, Error> {
        Setup::with_floor(backend, GENEROUS_FLOOR)
    }

    /// A setup whose configuration ends with `floor` (a `[floor]` section, or nothing).
    pub fn with_floor(backend: Backend, floor: &str) -> Result<Setup, Error> {
        let dir = tempfile::tempdir()?;
        let (key_section, wallet, env) = match backend {
            Backend::Keyfile => keyfile_key(dir.path())?,
            Backend::Pkcs11 => pkcs11_key(dir.path())?,
        };
        let grants = GrantSigner::generate();
        let config = dir.path().join("signer.toml");
        let text = format!(
            "socket = \"signer.sock\"\ndatabase = \"signer.sqlite\"\ngrant_public_key = \"{}\"\n\n\
             [[keys]]\nid = \"default\"\n{key_section}\n{floor}",
            grants.public_key()
        );
        std::fs::write(&config, text)?;
        Ok(Setup {
            socket: dir.path().join("signer.sock"),
            database: dir.path().join("signer.sqlite"),
            dir,
            backend,
            key_id: KeyId::new("default")?,
            wallet,
            grants,
            config,
            env,
            log_filter: "debug".to_owned(),
        })
    }

    /// A command for the signer binary with this setup's environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Starts `clawfirst-signer --config ...` and waits until it answers `health`.
    pub fn start(self) -> Result<Signer, Error> {
        self.start_logging("debug")
    }

    /// As [`Setup::start`], with `RUST_LOG` set to `filter`.
    pub fn start_logging(mut self, filter: &str) -> Result<Signer, Error> {
        self.log_filter = filter.to_owned();
        let stderr = self.dir.path().join("signer.stderr");
        let child = self.spawn(&stderr)?;
        let mut signer = Signer {
            setup: self,
            child,
            stderr,
        };
        signer.wait_until_ready()?;
        Ok(signer)
    }

    pub fn spawn(&self, stderr: &Path) -> Result<Child, Error> {
        Ok(self
            .command()
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", &self.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stderr)?)
            .spawn()?)
    }
}

fn keyfile_key(dir: &Path) -> Result<KeySection, Error> {
    let key_path = dir.join("wallet.key");
    let pass_path = dir.join("wallet.pass");
    write_secret(&pass_path, &format!("{PASSPHRASE}\n"))?;
    let wallet = dangerous_dev_keyfile::generate(
        &key_path,
        &SecretString::new(PASSPHRASE.to_owned()),
        TEST_KDF,
    )?;
    let section = "backend = \"dangerous_dev_keyfile\"\npath = \"wallet.key\"\n\
                   passphrase_file = \"wallet.pass\"\n";
    Ok((section.to_owned(), wallet, Vec::new()))
}

/// A fresh SoftHSM2 token in `dir`, with a key made by `clawfirst-signer pkcs11-keygen`.
fn pkcs11_key(dir: &Path) -> Result<KeySection, Error> {
    let module = softhsm_module();
    if !module.exists() {
        return Err(format!(
            "the SoftHSM2 PKCS#11 module {} is missing: the pkcs11 signer tests need it. \
             Run the project's test script, scripts/test, which installs softhsm2 and opensc \
             (or `apt-get install -y softhsm2 opensc`), or point CLAWFIRST_TEST_PKCS11_MODULE \
             at the module",
            module.display()
        )
        .into());
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens)?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
             slots.removable = false\n",
            tokens.display()
        ),
    )?;
    let env = vec![("SOFTHSM2_CONF".to_owned(), conf)];

    let init = Command::new("softhsm2-util")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args([
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--pin",
            PIN,
            "--so-pin",
        ])
        .arg("97531246")
        .output()
        .map_err(|e| {
            format!("cannot run softhsm2-util ({e}); run the project's test script, scripts/test")
        })?;
    if !init.status.success() {
        return Err(format!(
            "softhsm2-util failed: {}",
            String::from_utf8_lossy(&init.stderr)
        )
        .into());
    }

    let pin_path = dir.join("token.pin");
    write_secret(&pin_path, PIN)?;
    let keygen = Command::new(BIN)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("pkcs11-keygen")
        .arg("--module")
        .arg(&module)
        .args([
            "--token-label",
            TOKEN_LABEL,
            "--key-label",
            KEY_LABEL,
            "--json",
            "--pin-file",
        ])
        .arg(&pin_path)
        .output()?;
    if !keygen.status.success() {
        return Err(format!(
            "pkcs11-keygen failed: {}",
            String::from_utf8_lossy(&keygen.stderr)
        )
        .into());
    }
    let printed: serde_json::Value = serde_json::from_slice(&keygen.stdout)?;
    let wallet = Address::parse(printed["public_key"].as_str().unwrap_or_default())?;

    let section = format!(
        "backend = \"pkcs11\"\nmodule = \"{}\"\ntoken_label = \"{TOKEN_LABEL}\"\n\
         key_label = \"{KEY_LABEL}\"\npin_file = \"token.pin\"\n",
        module.display()
    );
    Ok((section, wallet, env))
}

/// A running signer process. Killed on drop.
pub struct Signer {
    pub setup: Setup,
    child: Child,
    stderr: PathBuf,
}

impl std::ops::Deref for Signer {
    type Target = Setup;

    fn deref(&self) -> &Setup {
        &self.setup
    }
}

impl Signer {
    pub fn start(backend: Backend) -> Result<Signer, Error> {
        Setup::new(backend)?.start()
    }

    fn wait_until_ready(&mut self) -> TestResult {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("signer exited with {status}: {}", self.stderr()).into());
            }
            if let Ok(mut client) = self.connect()
                && let SignerResponse::Health { .. } = client.request(&SignerRequest::Health {})?
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("signer did not become ready: {}", self.stderr()).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connect(&self) -> Result<Client, Error> {
        Client::connect(&self.socket)
    }

    /// Kills the process with SIGKILL, leaving its socket file behind, and starts it again.
    pub fn kill_and_restart(&mut self) -> TestResult {
        self.child.kill()?;
        self.child.wait()?;
        assert!(
            self.socket.exists(),
            "a killed signer leaves its socket behind"
        );
        self.child = self.setup.spawn(&self.stderr)?;
        self.wait_until_ready()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> Result<ExitStatus, Error> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err("signer did not exit after SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the signer wrote to standard error so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The `(op, outcome)` rows of the signer's request log, oldest first.
    pub fn request_log(&self) -> Result<Vec<(String, String)>, Error> {
        let conn = rusqlite::Connection::open(&self.database)?;
        let rows = conn
            .prepare("SELECT op, outcome FROM requests ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One connection to the signer, speaking the line protocol.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(socket: &Path) -> Result<Client, Error> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    pub fn request(&mut self, request: &SignerRequest) -> Result<SignerResponse, Error> {
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        self.send_raw(&line)
    }

    /// Sends raw bytes (which should end with a newline) and reads one response line.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<SignerResponse, Error> {
        self.writer.write_all(bytes)?;
        self.writer.flush()?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err("the signer closed the connection without answering".into());
        }
        Ok(serde_json::from_str(&line)?)
    }

    /// Whether the signer has closed the connection (reads end of file).
    pub fn is_closed(&mut self) -> Result<bool, Error> {
        let mut line = String::new();
        Ok(self.reader.read_line(&mut line)? == 0)
    }
}
