//! The `clawfirst-signer` binary.
//!
//! ```text
//! clawfirst-signer --config F                 serve (same as `serve --config F`)
//! clawfirst-signer serve --config F           serve until SIGTERM or Ctrl-C
//! clawfirst-signer dangerous-dev-keygen --out PATH --passphrase-file FILE [--json]
//! clawfirst-signer pkcs11-keygen --module M --token-label T --key-label K
//!                                (--pin-file F | --pin-env VAR) [--json]
//! clawfirst-signer dangerous-dev-tls-setup --dir D [--signer-name NAME]...
//!                                [--client-identity URI] [--days N]
//! ```
//!
//! Logs go to standard error (`RUST_LOG` filters, default `info`); standard output carries only
//! command results (the public key of a generated key).
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success; for `serve`, a clean shutdown after SIGTERM or Ctrl-C |
//! | 1 | failure while running, or key generation failed |
//! | 2 | invalid command line |
//! | 3 | refused to start: configuration, keys, database, socket or TLS listener unusable |

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use clawfirst_signer::backend::{dangerous_dev_keyfile, pkcs11};
use clawfirst_signer::config::SecretSource;

#[derive(Debug, Parser)]
#[command(
    name = "clawfirst-signer",
    version,
    about = "ClawFirst signing service"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    /// Configuration file; serves with it when no subcommand is given.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve signing requests on the configured Unix socket and/or TLS listener.
    Serve {
        /// Configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Create a passphrase-encrypted key file. Development only: the seed is decrypted into the
    /// signer's memory; use pkcs11 in production.
    DangerousDevKeygen {
        /// The key file to create; an existing file is never overwritten.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
        /// File holding the passphrase (mode 0600; one trailing newline is ignored).
        #[arg(long, value_name = "FILE")]
        passphrase_file: PathBuf,
        /// Print `{"public_key": ...}` instead of the bare public key.
        #[arg(long)]
        json: bool,
    },
    /// Generate an Ed25519 key pair inside a PKCS#11 token (non-extractable, sign only).
    Pkcs11Keygen(Pkcs11KeygenArgs),
    /// Write a throwaway CA, the signer's TLS certificate and key, and one client certificate
    /// and key for the server. Development only: use your own CA in production.
    DangerousDevTlsSetup(DevTlsArgs),
}

#[derive(Debug, Args)]
struct DevTlsArgs {
    /// Directory for the five files (created if missing); existing files are never replaced.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// A DNS name or IP address the signer's certificate is valid for (repeatable; default
    /// localhost and 127.0.0.1).
    #[arg(long = "signer-name", value_name = "NAME")]
    signer_names: Vec<String>,
    /// The identity in the server's client certificate: a URI, or a DNS name.
    #[arg(long, value_name = "URI", default_value = "urn:clawfirst:server")]
    client_identity: String,
    /// Days the certificates are valid.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = 365,
        value_parser = clap::value_parser!(u16).range(1..=3650)
    )]
    days: u16,
}

#[derive(Debug, Args)]
struct Pkcs11KeygenArgs {
    /// The PKCS#11 module (shared library).
    #[arg(long, value_name = "PATH")]
    module: PathBuf,
    /// Label of the token to create the key in.
    #[arg(long, value_name = "LABEL")]
    token_label: String,
    /// Label for the new key pair; must not be in use on the token.
    #[arg(long, value_name = "LABEL")]
    key_label: String,
    /// File holding the token's user PIN (mode 0600).
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "pin_env",
        conflicts_with = "pin_env"
    )]
    pin_file: Option<PathBuf>,
    /// Environment variable holding the token's user PIN.
    #[arg(long, value_name = "VAR")]
    pin_env: Option<String>,
    /// Print `{"public_key": ...}` instead of the bare public key.
    #[arg(long)]
    json: bool,
}

/// Why the binary stopped; selects the exit code.
enum Failure {
    /// The service could not start (exit 3).
    Start(anyhow::Error),
    /// Anything else (exit 1).
    Run(anyhow::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Start(e)) => {
            eprintln!("error: {e:#}");
            eprintln!("the signer did not start; fix the problem above and start it again");
            ExitCode::from(3)
        }
        Err(Failure::Run(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

fn run(cli: Cli) -> Result<(), Failure> {
    match (cli.command, cli.config) {
        (Some(Command::Serve { config }), _) | (None, Some(config)) => serve(config),
        (
            Some(Command::DangerousDevKeygen {
                out,
                passphrase_file,
                json,
            }),
            _,
        ) => {
            let passphrase = SecretSource::File(passphrase_file)
                .read()
                .context("cannot read the passphrase")
                .map_err(Failure::Run)?;
            let public_key = dangerous_dev_keyfile::generate(
                &out,
                &passphrase,
                dangerous_dev_keyfile::KdfParams::DEFAULT,
            )
            .context("cannot create the key file")
            .map_err(Failure::Run)?;
            eprintln!(
                "created {}: a development key file; do not use it in production",
                out.display()
            );
            print_public_key(&public_key, json);
            Ok(())
        }
        (Some(Command::Pkcs11Keygen(args)), _) => {
            let pin = match (args.pin_file, args.pin_env) {
                (Some(path), _) => SecretSource::File(path),
                (None, Some(name)) => SecretSource::Env(name),
                (None, None) => {
                    return Err(Failure::Run(anyhow::anyhow!(
                        "--pin-file or --pin-env is required"
                    )));
                }
            };
            let pin = pin
                .read()
                .context("cannot read the PIN")
                .map_err(Failure::Run)?;
            let options = pkcs11::KeygenOptions {
                module: args.module,
                token_label: args.token_label,
                key_label: args.key_label,
            };
            let public_key = pkcs11::generate(&options, &pin)
                .context("cannot generate the key pair on the token")
                .map_err(Failure::Run)?;
            print_public_key(&public_key, args.json);
            Ok(())
        }
        (Some(Command::DangerousDevTlsSetup(args)), _) => dev_tls_setup(args).map_err(Failure::Run),
        (None, None) => Err(Failure::Start(anyhow::anyhow!(
            "no configuration given; run `clawfirst-signer --config FILE` or see --help"
        ))),
    }
}

fn dev_tls_setup(args: DevTlsArgs) -> anyhow::Result<()> {
    use clawfirst_signer::tls::dangerous_dev_setup::{self, DevTlsOptions};

    let client_identity = clawfirst_signer::config::ClientIdentity::parse(&args.client_identity)
        .map_err(|reason| anyhow::anyhow!("--client-identity: {reason}"))?;
    let mut options = DevTlsOptions {
        client_identity,
        validity_days: args.days,
        ..DevTlsOptions::default()
    };
    if !args.signer_names.is_empty() {
        options.signer_names = args.signer_names;
    }
    let [ca, cert, key, client_cert, client_key] =
        dangerous_dev_setup::generate(&args.dir, &options)
            .context("cannot write the development TLS files")?;
    eprintln!(
        "wrote development TLS files into {}; do not use them in production",
        args.dir.display()
    );
    println!("# clawfirst-signer configuration");
    println!("[tls]");
    println!("listen = \"127.0.0.1:7443\"");
    println!("cert_file = {:?}", cert.display().to_string());
    println!("key_file = {:?}", key.display().to_string());
    println!("client_ca_file = {:?}", ca.display().to_string());
    println!("allowed_client = {:?}", args.client_identity);
    println!();
    println!("# clawfirst (server) configuration");
    println!("[signer]");
    println!("tls_address = \"127.0.0.1:7443\"");
    println!("tls_ca_file = {:?}", ca.display().to_string());
    println!(
        "tls_server_name = {:?}",
        options
            .signer_names
            .first()
            .map_or("localhost", String::as_str)
    );
    println!("tls_cert_file = {:?}", client_cert.display().to_string());
    println!("tls_key_file = {:?}", client_key.display().to_string());
    Ok(())
}

fn print_public_key(public_key: &clawfirst_core::Address, json: bool) {
    match json {
        true => println!(
            "{}",
            serde_json::json!({ "public_key": public_key.to_string() })
        ),
        false => println!("{public_key}"),
    }
}

fn serve(config_path: PathBuf) -> Result<(), Failure> {
    let config = clawfirst_signer::Config::load(&config_path)
        .context("invalid configuration")
        .map_err(Failure::Start)?;
    let service = clawfirst_signer::open(&config).map_err(|e| Failure::Start(e.into()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::Start)?;
    runtime.block_on(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot install the SIGTERM handler")
                .map_err(Failure::Start)?;
        let shutdown = async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
            }
        };
        let endpoints = clawfirst_signer::Endpoints {
            socket: config.socket.as_deref(),
            tls: config.tls.as_ref(),
        };
        clawfirst_signer::serve_endpoints(service, endpoints, shutdown)
            .await
            .map_err(|e| match e {
                clawfirst_signer::ServeError::Cleanup { .. } => Failure::Run(e.into()),
                other => Failure::Start(other.into()),
            })
    })
}
