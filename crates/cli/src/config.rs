//! Where the server and the credentials come from: flags, then the environment
//! (`BURNBOX_URL`, `BURNBOX_CUSTID`, `BURNBOX_TOKEN`), then the config file in the platform's
//! config directory. The token is never printed: [`Settings`]'s `Debug` redacts it, and no error
//! message includes it.

use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The config file's name inside the platform config directory's `burnbox` folder.
const FILE_NAME: &str = "config";

/// What the flags said (highest precedence).
#[derive(Default)]
pub struct FlagSettings {
    /// `--url`.
    pub url: Option<String>,
    /// `--custid`.
    pub custid: Option<String>,
    /// `--token-file`: the token is read from a file, never taken as an argument (argument lists
    /// are visible to every user of the machine).
    pub token_file: Option<PathBuf>,
    /// `--config`.
    pub config: Option<PathBuf>,
}

/// The settings in force, each with its source resolved.
#[derive(Clone, Default)]
pub struct Settings {
    /// The server's base URL (`https://secrets.example.com`), if any source set it.
    pub url: Option<String>,
    /// Whether the URL came from `--url` (which then also wins over a link's own server).
    pub url_from_flag: bool,
    /// The customer id.
    pub custid: Option<String>,
    /// The API token.
    pub token: Option<String>,
    /// The config file consulted (or that `configure` writes).
    pub config_path: Option<PathBuf>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Settings")
            .field("url", &self.url)
            .field("url_from_flag", &self.url_from_flag)
            .field("custid", &self.custid)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("config_path", &self.config_path)
            .finish()
    }
}

impl Settings {
    /// The credentials, when both halves are known.
    pub fn credentials(&self) -> Result<Option<(&str, &str)>, CliError> {
        match (&self.custid, &self.token) {
            (Some(custid), Some(token)) => Ok(Some((custid, token))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(CliError::Usage(
                "a customer id without a token: set BURNBOX_TOKEN, --token-file or the config file's token".into(),
            )),
            (None, Some(_)) => Err(CliError::Usage(
                "a token without a customer id: set BURNBOX_CUSTID, --custid or the config file's custid".into(),
            )),
        }
    }
}

/// The default config file: `<config dir>/burnbox/config` (`~/.config/burnbox/config` on Linux).
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("burnbox").join(FILE_NAME))
}

/// Resolves the settings: `flags` > `env` (a lookup, so tests can pass their own) > the file.
pub fn resolve(
    flags: &FlagSettings,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, CliError> {
    let non_empty = |value: Option<String>| value.filter(|value| !value.trim().is_empty());
    let config_path = flags
        .config
        .clone()
        .or_else(|| non_empty(env("BURNBOX_CONFIG")).map(PathBuf::from))
        .or_else(default_path);
    let file = match &config_path {
        Some(path) => read_file(path)?,
        None => FileSettings::default(),
    };
    let token = match &flags.token_file {
        Some(path) => Some(read_token_file(path)?),
        None => non_empty(env("BURNBOX_TOKEN")).or(file.token),
    };
    let url_flag = non_empty(flags.url.clone());
    Ok(Settings {
        url_from_flag: url_flag.is_some(),
        url: url_flag
            .or_else(|| non_empty(env("BURNBOX_URL")))
            .or(file.url),
        custid: non_empty(flags.custid.clone())
            .or_else(|| non_empty(env("BURNBOX_CUSTID")))
            .or(file.custid),
        token,
        config_path,
    })
}

fn read_token_file(path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        CliError::Usage(format!(
            "cannot read the token file {}: {err}",
            path.display()
        ))
    })?;
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(CliError::Usage(format!(
            "the token file {} is empty",
            path.display()
        )));
    }
    Ok(token)
}

/// What a config file holds.
#[derive(Default)]
struct FileSettings {
    url: Option<String>,
    custid: Option<String>,
    token: Option<String>,
}

/// Reads `key = value` lines (`#` comments; values optionally in double quotes). A missing file
/// is no settings. Errors name the line, never its content (it may be the token).
fn read_file(path: &Path) -> Result<FileSettings, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileSettings::default());
        }
        Err(err) => {
            return Err(CliError::Usage(format!(
                "cannot read the config file {}: {err}",
                path.display()
            )));
        }
    };
    let mut settings = FileSettings::default();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            CliError::Usage(format!(
                "{} line {}: expected `url`, `custid` or `token` = value",
                path.display(),
                number + 1
            ))
        };
        let (key, value) = line.split_once('=').ok_or_else(bad)?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|value| value.strip_suffix('"'))
            .unwrap_or(value)
            .to_owned();
        let value = Some(value).filter(|value| !value.is_empty());
        match key.trim() {
            "url" => settings.url = value,
            "custid" => settings.custid = value,
            "token" => settings.token = value,
            _ => return Err(bad()),
        }
    }
    Ok(settings)
}

/// Writes `settings` to its config file, created readable by its owner only (0600; the
/// folder 0700), since it holds the token. Returns the path written.
pub fn write(settings: &Settings) -> Result<PathBuf, CliError> {
    let path = settings.config_path.clone().ok_or_else(|| {
        CliError::Usage("no config directory on this platform: pass --config PATH".into())
    })?;
    let io_error = |err: std::io::Error| {
        CliError::Other(format!(
            "cannot write the config file {}: {err}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io_error)?;
    }
    let mut text = String::from("# burnbox-cli settings (holds the API token: keep it 0600)\n");
    for (key, value) in [
        ("url", &settings.url),
        ("custid", &settings.custid),
        ("token", &settings.token),
    ] {
        if let Some(value) = value {
            text.push_str(&format!("{key} = \"{value}\"\n"));
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(io_error)?;
    // An existing file keeps its mode on open: tighten it before the token is written.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_error)?;
    }
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io_error)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("config");
        std::fs::write(
            &file,
            "# mine\nurl = \"https://file.example\"\ncustid = filecust\ntoken = filetoken\n",
        )
        .expect("write");
        let flags = FlagSettings {
            config: Some(file.clone()),
            ..FlagSettings::default()
        };
        let only_file = resolve(&flags, env_of(&[])).expect("settings");
        assert_eq!(only_file.url.as_deref(), Some("https://file.example"));
        assert_eq!(only_file.custid.as_deref(), Some("filecust"));
        assert_eq!(only_file.token.as_deref(), Some("filetoken"));
        assert!(!only_file.url_from_flag);

        let env = env_of(&[
            ("BURNBOX_URL", "https://env.example"),
            ("BURNBOX_CUSTID", "envcust"),
            ("BURNBOX_TOKEN", "envtoken"),
        ]);
        let with_env = resolve(&flags, &env).expect("settings");
        assert_eq!(with_env.url.as_deref(), Some("https://env.example"));
        assert_eq!(with_env.custid.as_deref(), Some("envcust"));
        assert_eq!(with_env.token.as_deref(), Some("envtoken"));

        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "flagtoken\n").expect("write");
        let flags = FlagSettings {
            url: Some("https://flag.example".into()),
            custid: Some("flagcust".into()),
            token_file: Some(token_file),
            config: Some(file),
        };
        let with_flags = resolve(&flags, &env).expect("settings");
        assert_eq!(with_flags.url.as_deref(), Some("https://flag.example"));
        assert!(with_flags.url_from_flag);
        assert_eq!(with_flags.custid.as_deref(), Some("flagcust"));
        assert_eq!(with_flags.token.as_deref(), Some("flagtoken"));
        assert!(!format!("{with_flags:?}").contains("flagtoken"));
    }

    #[test]
    fn written_files_are_private_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested").join("config");
        let settings = Settings {
            url: Some("https://secrets.example".into()),
            custid: Some("alice".into()),
            token: Some("s3cret-token".into()),
            config_path: Some(path.clone()),
            ..Settings::default()
        };
        assert_eq!(write(&settings).expect("written"), path);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let flags = FlagSettings {
            config: Some(path),
            ..FlagSettings::default()
        };
        let read = resolve(&flags, env_of(&[])).expect("settings");
        assert_eq!(read.token.as_deref(), Some("s3cret-token"));
        assert_eq!(read.custid.as_deref(), Some("alice"));
    }

    #[test]
    fn a_malformed_line_is_named_without_its_content() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config");
        std::fs::write(&path, "url = x\ntokn = hunter2\n").expect("write");
        let flags = FlagSettings {
            config: Some(path),
            ..FlagSettings::default()
        };
        let Err(err) = resolve(&flags, env_of(&[])) else {
            panic!("a malformed file is refused");
        };
        let message = err.to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
