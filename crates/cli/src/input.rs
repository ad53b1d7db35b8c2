//! What the user gives besides flags: the secret (stdin, a file, or a prompt without echo), a
//! passphrase (a file or a prompt, never an argument), and human durations.

use std::io::{IsTerminal, Read};
use std::path::Path;

use crate::error::CliError;

/// The largest secret read from stdin or a file. Far above any server's limit (burnbox's default
/// is 64 KiB), so the server still says what its limit is; this only keeps a runaway pipe from
/// filling the memory.
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Reads the secret: from `file`, else stdin; on a terminal, one line prompted without echo.
/// The bytes are kept exactly (a trailing newline included): `reveal` prints them back as they
/// were.
pub fn read_secret(file: Option<&Path>) -> Result<String, CliError> {
    let bytes = match file {
        Some(path) => {
            let file = std::fs::File::open(path)
                .map_err(|err| CliError::Usage(format!("cannot read {}: {err}", path.display())))?;
            read_capped(file, &path.display().to_string())?
        }
        None if std::io::stdin().is_terminal() => {
            let line = rpassword::prompt_password("Secret (hidden, Enter to share): ")
                .map_err(|err| CliError::Other(format!("cannot read from the terminal: {err}")))?;
            line.into_bytes()
        }
        None => read_capped(std::io::stdin().lock(), "stdin")?,
    };
    if bytes.is_empty() {
        return Err(CliError::Usage(
            "nothing to share: the input is empty (pipe the secret in, or use --file)".into(),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        CliError::Usage("the secret is not UTF-8 text (share text, not binary)".into())
    })
}

fn read_capped(reader: impl Read, what: &str) -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| CliError::Usage(format!("cannot read {what}: {err}")))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(CliError::Usage(format!(
            "{what} is over {} MiB: too large for a secret",
            MAX_INPUT_BYTES / 1024 / 1024
        )));
    }
    Ok(bytes)
}

/// Reads a passphrase from `file` (one trailing newline removed, as `echo` writes one) or, with
/// `prompt`, from the terminal without echo.
pub fn read_passphrase(file: Option<&Path>, prompt: bool) -> Result<Option<String>, CliError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|err| {
            CliError::Usage(format!(
                "cannot read the passphrase file {}: {err}",
                path.display()
            ))
        })?;
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        if text.is_empty() {
            return Err(CliError::Usage(format!(
                "the passphrase file {} is empty",
                path.display()
            )));
        }
        return Ok(Some(text.to_owned()));
    }
    if prompt {
        let passphrase = rpassword::prompt_password("Passphrase (hidden): ").map_err(|err| {
            CliError::Usage(format!(
                "--passphrase-prompt needs a terminal: {err} (use --passphrase-file in scripts)"
            ))
        })?;
        if passphrase.is_empty() {
            return Err(CliError::Usage("an empty passphrase".into()));
        }
        return Ok(Some(passphrase));
    }
    Ok(None)
}

/// Parses a duration: `90s`, `15m`, `1h`, `7d`, `1h30m`, or plain seconds (`3600`).
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let invalid = || format!("{text:?} is not a duration: use e.g. 90s, 15m, 1h, 7d or 1h30m");
    if text.is_empty() {
        return Err(invalid());
    }
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        return text.parse().map_err(|_| invalid());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for character in text.chars() {
        if character.is_ascii_digit() {
            number.push(character);
            continue;
        }
        let unit: u64 = match character {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(invalid()),
        };
        let value: u64 = number.parse().map_err(|_| invalid())?;
        number.clear();
        total = value
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(invalid)?;
    }
    if !number.is_empty() {
        return Err(invalid());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        for (text, seconds) in [
            ("90s", 90),
            ("15m", 900),
            ("1h", 3600),
            ("7d", 604_800),
            ("1h30m", 5400),
            ("2w", 1_209_600),
            ("3600", 3600),
            (" 5m ", 300),
        ] {
            assert_eq!(parse_duration(text), Ok(seconds), "{text}");
        }
        for bad in [
            "",
            "m",
            "5x",
            "1.5h",
            "-5m",
            "5m3",
            "99999999999999999999d",
            "1h 30m",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
