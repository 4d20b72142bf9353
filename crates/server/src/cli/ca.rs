//! `clawfirst ca init|server-cert`: the operator's CA in the data directory, for trying mutual
//! TLS (see [`crate::tls::operator`]; production uses the operator's own PKI).

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use crate::datadir::default_data_dir;
use crate::tls::operator::{
    CA_CERT_FILE, CA_KEY_FILE, WrittenCertificate, ensure_ca, issue_server_certificate,
};

/// `clawfirst ca ...`
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the operator CA in the data directory (`ca/operator-ca.pem`, `.key`), unless it
    /// exists; its certificate is what `tls.client_ca_file` names.
    Init {
        /// The data directory (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue a TLS server certificate from the operator CA into `tls/server.pem` and
    /// `tls/server.key`, for `tls.cert_file` and `tls.key_file`.
    ServerCert {
        /// A DNS name the certificate carries; repeat for more.
        #[arg(long = "dns")]
        dns_names: Vec<String>,
        /// An IP address the certificate carries; repeat for more.
        #[arg(long = "ip")]
        ip_addresses: Vec<IpAddr>,
        /// Lifetime in days.
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// The data directory (default as for `up`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `ca` command.
///
/// # Errors
/// When the CA or the certificate cannot be made or written.
pub fn run(command: CaCommand) -> Result<()> {
    match command {
        CaCommand::Init { data_dir, json } => {
            let dir = data_dir.unwrap_or_else(default_data_dir);
            let (_, created) = ensure_ca(&dir)?;
            let cert_file = dir.join(CA_CERT_FILE);
            if json {
                let out = json!({ "ca_cert_file": cert_file, "created": created });
                println!("{out}");
            } else if created {
                println!("created the operator CA: {}", cert_file.display());
                println!(
                    "its key {} (mode 0600) can issue certificates for any agent",
                    dir.join(CA_KEY_FILE).display()
                );
            } else {
                println!("the operator CA exists: {}", cert_file.display());
            }
            Ok(())
        }
        CaCommand::ServerCert {
            dns_names,
            ip_addresses,
            days,
            data_dir,
            json,
        } => {
            let dir = data_dir.unwrap_or_else(default_data_dir);
            let written = issue_server_certificate(&dir, &dns_names, &ip_addresses, days)?;
            print_written(&written, "server certificate", json);
            if !json {
                println!("for [tls] in clawfirst.toml:");
                println!("  cert_file = {:?}", written.cert_file);
                println!("  key_file = {:?}", written.key_file);
            }
            Ok(())
        }
    }
}

/// Prints where a certificate went and its fingerprint.
pub(super) fn print_written(written: &WrittenCertificate, what: &str, json: bool) {
    if json {
        let out = json!({
            "cert_file": written.cert_file,
            "key_file": written.key_file,
            "certificate_sha256": written.sha256,
        });
        println!("{out}");
    } else {
        println!("{what}: {}", written.cert_file.display());
        println!("key (mode 0600): {}", written.key_file.display());
        println!("certificate SHA-256: {}", written.sha256);
    }
}
