//! `burnbox-cli`: burnbox (or any Onetime Secret v1 compatible server) from the terminal.
//!
//! `share` reads the secret from stdin or a file and prints one line, the link; by default the
//! secret is encrypted here in the web page's `bbx1` format (docs/end-to-end.md), the key only in
//! the link's fragment, so the server never sees the plaintext. `reveal` prints the value
//! exactly as shared, decrypting locally. Errors are one line on stderr, with the exit codes of
//! [`error::EXIT_CODES`]; stdout then stays empty.

mod client;
mod config;
mod error;
mod input;
mod link;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::client::{Client, Receipt, ShareRequest};
use crate::config::{FlagSettings, Settings};
use crate::error::{CliError, EXIT_CODES};

/// Share and reveal one-time secrets from the terminal.
#[derive(Parser)]
#[command(name = "burnbox-cli", version, after_help = EXIT_CODES)]
struct Cli {
    /// The server's URL (https://secrets.example.com). Else BURNBOX_URL, else the config file;
    /// for `reveal`, `receipt` and `burn` of a link, the link's own server unless --url is given.
    #[arg(long, global = true, value_name = "URL")]
    url: Option<String>,
    /// Customer id for the API token (else BURNBOX_CUSTID, else the config file).
    #[arg(long, global = true, value_name = "CUSTID")]
    custid: Option<String>,
    /// A file holding the API token (else BURNBOX_TOKEN, else the config file). Never an
    /// argument: argument lists are visible to every user of the machine.
    #[arg(long, global = true, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Use burnbox's gRPC API at ADDR (host:port, plaintext, for internal services) instead of
    /// REST.
    #[arg(long, global = true, value_name = "ADDR")]
    grpc: Option<String>,
    /// The config file (else BURNBOX_CONFIG, else burnbox/config in the platform's config
    /// directory, e.g. ~/.config/burnbox/config).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print the server's whole answer as one line of JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// A passphrase, from a file or a prompt, never from the command line.
#[derive(Args)]
struct Passphrase {
    /// Read the passphrase from PATH (one trailing newline is removed).
    #[arg(long, value_name = "PATH", conflicts_with = "passphrase_prompt")]
    passphrase_file: Option<PathBuf>,
    /// Ask for the passphrase on the terminal, without echo.
    #[arg(long)]
    passphrase_prompt: bool,
}

impl Passphrase {
    fn read(&self) -> Result<Option<String>, CliError> {
        input::read_passphrase(self.passphrase_file.as_deref(), self.passphrase_prompt)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Share a secret read from stdin (or --file) and print its link. The bytes are kept exactly,
    /// a trailing newline included; on a terminal, one line is asked for without echo.
    Share {
        /// Read the secret from PATH instead of stdin.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// How long the secret lives unread: 90s, 15m, 1h, 7d, 1h30m (default: the server's).
        #[arg(long, value_parser = input::parse_duration, value_name = "DURATION")]
        ttl: Option<u64>,
        /// Send the plain value (encrypted at rest only), for recipients whose client cannot
        /// decrypt end-to-end links.
        #[arg(long)]
        no_e2e: bool,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Reveal (and so destroy) a secret: print its value exactly as shared, decrypting an
    /// end-to-end link here.
    Reveal {
        /// The link ({server}/secret/{key}#{key}), a link without the #part, or a secret key.
        link: String,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Have the server generate a password: prints the password, then its link.
    Generate {
        /// How long the secret lives unread: 90s, 15m, 1h, 7d (default: the server's).
        #[arg(long, value_parser = input::parse_duration, value_name = "DURATION")]
        ttl: Option<u64>,
        /// The password's length (the server's default otherwise).
        #[arg(long)]
        length: Option<u32>,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// Show a receipt: whether the secret was received, burned or expired.
    Receipt {
        /// The metadata key, or a /receipt/… or /private/… link.
        key: String,
    },
    /// Destroy a secret before anyone reads it.
    Burn {
        /// The metadata key, or a /receipt/… or /private/… link.
        key: String,
        #[command(flatten)]
        passphrase: Passphrase,
    },
    /// List your recent receipts, newest first (needs a customer id and token).
    Recent,
    /// Save the settings in force (--url, --custid, --token-file, the environment) to the config
    /// file, created readable by you only (0600).
    Configure {
        /// Ask for the API token on the terminal, without echo.
        #[arg(long)]
        token_prompt: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go out as clap writes them (0; 2 for a bare `burnbox-cli`).
            if !err.use_stderr()
                || err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                err.exit();
            }
            // A usage error is one line like every other error, exit 2.
            // clap's first paragraph says what is wrong; the usage and tips follow.
            let rendered = err.render().to_string();
            let what: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .take_while(|line| !line.is_empty())
                .collect();
            let what = what.join(" ");
            let what = what.strip_prefix("error: ").unwrap_or(&what);
            return fail(&CliError::Usage(format!("{what} (see --help)")));
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&CliError::Other(format!("cannot start: {err}"))),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// One line on stderr, and the error's exit code.
fn fail(error: &CliError) -> ExitCode {
    // Nothing is left to tell if stderr is closed too.
    let _ = writeln!(std::io::stderr(), "burnbox-cli: {error}");
    ExitCode::from(error.exit_code())
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let flags = FlagSettings {
        url: cli.url.clone(),
        custid: cli.custid.clone(),
        token_file: cli.token_file.clone(),
        config: cli.config.clone(),
    };
    let mut settings = config::resolve(&flags, |name| std::env::var(name).ok())?;
    match cli.command {
        Command::Share {
            file,
            ttl,
            no_e2e,
            passphrase,
        } => {
            let secret = input::read_secret(file.as_deref())?;
            let passphrase = passphrase.read()?;
            let (value, fragment) = if no_e2e {
                (secret, None)
            } else {
                let sealed = burnbox_e2e::seal(&secret);
                (sealed.value, Some(sealed.key_fragment))
            };
            let mut client = connect(&cli.grpc, &settings, None).await?;
            let receipt = client
                .share(ShareRequest {
                    secret: value,
                    passphrase,
                    ttl,
                })
                .await?;
            let link = link_of(&receipt, &settings, fragment.as_deref())?;
            if cli.json {
                print_json_with_link(&receipt, &link)
            } else {
                print_out(&format!("{link}\n"))
            }
        }
        Command::Reveal { link, passphrase } => {
            let target = link::parse_secret(&link)?;
            let passphrase = passphrase.read()?;
            let mut client = connect(&cli.grpc, &settings, target.server.as_deref()).await?;
            if target.fragment.is_none() && client.is_end_to_end(&target.key).await == Some(true) {
                return Err(CliError::Other(
                    "this secret is end-to-end encrypted and the link has no key (the part after #): \
                     ask the sender for the whole link. Nothing was revealed."
                        .into(),
                ));
            }
            let revealed = client.reveal(&target.key, passphrase).await?;
            let value = if burnbox_e2e::is_end_to_end(&revealed.value) {
                let Some(fragment) = &target.fragment else {
                    return Err(CliError::Other(
                        "the secret is end-to-end encrypted, but the link had no key (the part after #); \
                         it is now destroyed: ask the sender to share it again"
                            .into(),
                    ));
                };
                burnbox_e2e::open(&revealed.value, fragment)
                    .map_err(|err| CliError::Other(format!("{err}; the secret is now destroyed")))?
            } else {
                revealed.value
            };
            if cli.json {
                let json = serde_json::json!({ "secret_key": target.key, "value": value });
                print_out(&format!("{json}\n"))
            } else if std::io::stdout().is_terminal() && !value.ends_with('\n') {
                // Only for a person reading it: the prompt should not stick to the secret.
                print_out(&format!("{value}\n"))
            } else {
                print_out(&value)
            }
        }
        Command::Generate {
            ttl,
            length,
            passphrase,
        } => {
            let passphrase = passphrase.read()?;
            let mut client = connect(&cli.grpc, &settings, None).await?;
            let receipt = client.generate(passphrase, ttl, length).await?;
            let link = link_of(&receipt, &settings, None)?;
            if cli.json {
                print_json_with_link(&receipt, &link)
            } else {
                let password = receipt.value.as_deref().unwrap_or_default();
                print_out(&format!("{password}\n{link}\n"))
            }
        }
        Command::Receipt { key } => {
            let target = link::parse_receipt(&key)?;
            let mut client = connect(&cli.grpc, &settings, target.server.as_deref()).await?;
            let receipt = client.receipt(&target.metadata_key).await?;
            if cli.json {
                print_json(&receipt)
            } else {
                print_out(&receipt_lines(&receipt))
            }
        }
        Command::Burn { key, passphrase } => {
            let target = link::parse_receipt(&key)?;
            let passphrase = passphrase.read()?;
            let mut client = connect(&cli.grpc, &settings, target.server.as_deref()).await?;
            let burned = client.burn(&target.metadata_key, passphrase).await?;
            if cli.json {
                print_json(&burned)
            } else {
                print_out(&receipt_lines(&burned.state))
            }
        }
        Command::Recent => {
            let mut client = connect(&cli.grpc, &settings, None).await?;
            let receipts = client.recent().await?;
            if cli.json {
                print_json(&receipts)
            } else {
                let lines: String = receipts
                    .iter()
                    .map(|receipt| {
                        format!(
                            "{}\t{}\t{}\n",
                            receipt.metadata_key,
                            receipt.state,
                            receipt.created.unwrap_or_default()
                        )
                    })
                    .collect();
                print_out(&lines)
            }
        }
        Command::Configure { token_prompt } => {
            if token_prompt {
                let token = rpassword::prompt_password("API token (hidden): ").map_err(|err| {
                    CliError::Usage(format!("--token-prompt needs a terminal: {err}"))
                })?;
                settings.token = Some(token.trim().to_owned()).filter(|token| !token.is_empty());
            }
            let path = config::write(&settings)?;
            print_out(&format!("{}\n", path.display()))
        }
    }
}

/// The client for a command: gRPC when `--grpc` is given; else REST to the server from
/// `--url`, then the link's own server, then BURNBOX_URL or the config file.
async fn connect(
    grpc: &Option<String>,
    settings: &Settings,
    link_server: Option<&str>,
) -> Result<Client, CliError> {
    let credentials = settings.credentials()?;
    if let Some(address) = grpc {
        return Client::grpc(address, credentials).await;
    }
    let server = match (&settings.url, link_server) {
        (Some(url), _) if settings.url_from_flag => url.as_str(),
        (_, Some(link_server)) => link_server,
        (Some(url), None) => url.as_str(),
        (None, None) => {
            return Err(CliError::Usage(
                "which server? pass --url, set BURNBOX_URL, or save one with `burnbox-cli configure`"
                    .into(),
            ));
        }
    };
    Client::rest(server, credentials)
}

/// The link to the receipt's secret: under the server's public URL when it tells it (the base of
/// the receipt page's `metadata_url`, or a URL in `share_domain`, as earlier burnbox builds sent),
/// else under the URL used to reach it; a bare `KEY#FRAGMENT` when neither is known (gRPC
/// without --url), which `reveal` accepts as well.
fn link_of(
    receipt: &Receipt,
    settings: &Settings,
    fragment: Option<&str>,
) -> Result<String, CliError> {
    let key = receipt.secret_key.as_deref().ok_or_else(|| {
        CliError::Other("the server's receipt has no secret_key to make a link from".into())
    })?;
    let is_url = |text: &&str| text.starts_with("https://") || text.starts_with("http://");
    let receipt_page_base = receipt.metadata_url.as_deref().and_then(|url| {
        url.strip_suffix(receipt.metadata_key.as_str())?
            .strip_suffix("/private/")
            .or_else(|| {
                url.strip_suffix(receipt.metadata_key.as_str())?
                    .strip_suffix("/receipt/")
            })
    });
    let share_domain = Some(receipt.share_domain.as_str()).filter(is_url);
    Ok(
        match receipt_page_base
            .filter(is_url)
            .or(share_domain)
            .or(settings.url.as_deref())
        {
            Some(base) => link::secret_link(base, key, fragment),
            None => match fragment {
                Some(fragment) => format!("{key}#{fragment}"),
                None => key.to_owned(),
            },
        },
    )
}

/// Human-readable receipt: one `field: value` line per field that has a value.
fn receipt_lines(receipt: &Receipt) -> String {
    let mut lines = String::new();
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(receipt) else {
        return lines;
    };
    for (name, value) in fields {
        let shown = match value {
            serde_json::Value::String(text) if !text.is_empty() => text,
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            serde_json::Value::Array(_)
            | serde_json::Value::Object(_)
            | serde_json::Value::Null
            | serde_json::Value::String(_) => continue,
        };
        lines.push_str(&format!("{name}: {shown}\n"));
    }
    lines
}

fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string(value)
        .map_err(|err| CliError::Other(format!("cannot write JSON: {err}")))?;
    print_out(&format!("{text}\n"))
}

/// The receipt as JSON with the `link` (the only place the end-to-end key is written).
fn print_json_with_link(receipt: &Receipt, link: &str) -> Result<(), CliError> {
    let mut value = serde_json::to_value(receipt)
        .map_err(|err| CliError::Other(format!("cannot write JSON: {err}")))?;
    if let serde_json::Value::Object(fields) = &mut value {
        fields.insert("link".into(), link.into());
    }
    print_json(&value)
}

/// Writes to stdout, an error (not a panic) when it is closed.
fn print_out(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| CliError::Other(format!("cannot write to stdout: {err}")))
}
