//! Settings from a file: `NAME=value` lines using the same names as the environment variables
//! (the format of Docker's `--env-file` and systemd's `EnvironmentFile`), so one vocabulary serves
//! the file, the environment and the docs. A flag beats the environment, which beats the file,
//! which beats the built-in default.
//!
//! The file is named by `--config PATH` or `PICTUREDAY_CONFIG`. Blank lines and lines starting
//! with `#` are ignored; a value may be wrapped in single or double quotes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory, FromArgMatches};

/// The environment variable naming the settings file.
pub const CONFIG_ENV: &str = "PICTUREDAY_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("reading settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// The settings of one file, by variable name, with the line each came from.
#[derive(Debug, Default)]
pub struct ConfigFile {
    path: PathBuf,
    values: BTreeMap<String, (usize, String)>,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigFileError> {
        let mut values = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let error = |reason: String| ConfigFileError::Line {
                path: path.to_owned(),
                line,
                reason,
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let trimmed = trimmed.strip_prefix("export ").unwrap_or(trimmed);
            let Some((name, value)) = trimmed.split_once('=') else {
                return Err(error(format!("expected NAME=value, found {trimmed:?}")));
            };
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(error(format!(
                    "{name:?} is not a setting name (upper case, digits and _)"
                )));
            }
            let value = unquote(value.trim()).map_err(error)?;
            if let Some((first, _)) = values.insert(name.to_owned(), (line, value)) {
                return Err(error(format!("{name} is already set on line {first}")));
            }
        }
        Ok(Self {
            path: path.to_owned(),
            values,
        })
    }

    /// Makes every value of the file the default of the argument reading that variable, in
    /// `command` and its subcommands. A name no argument reads is an error: a misspelt setting
    /// must not be silently ignored.
    pub fn apply(&self, command: Command) -> Result<Command, ConfigFileError> {
        let mut known = Vec::new();
        collect_env_names(&command, &mut known);
        for (name, (line, _)) in &self.values {
            if !known.contains(name) {
                known.sort();
                known.dedup();
                return Err(ConfigFileError::Line {
                    path: self.path.clone(),
                    line: *line,
                    reason: format!("unknown setting {name}; known: {}", known.join(", ")),
                });
            }
        }
        Ok(self.apply_to(command))
    }

    fn apply_to(&self, mut command: Command) -> Command {
        let ids: Vec<(String, String)> = command
            .get_arguments()
            .filter_map(|arg| {
                let env = arg.get_env()?.to_str()?;
                let (_, value) = self.values.get(env)?;
                Some((arg.get_id().to_string(), value.clone()))
            })
            .collect();
        for (id, value) in ids {
            command = command.mut_arg(id, |arg| arg.default_value(value));
        }
        let subcommands: Vec<String> = command
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        for name in subcommands {
            command = command.mut_subcommand(name, |sub| self.apply_to(sub));
        }
        command
    }
}

fn collect_env_names(command: &Command, names: &mut Vec<String>) {
    for arg in command.get_arguments() {
        if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
            names.push(env.to_owned());
        }
    }
    for sub in command.get_subcommands() {
        collect_env_names(sub, names);
    }
}

fn unquote(value: &str) -> Result<String, String> {
    for quote in ['"', '\''] {
        if let Some(rest) = value.strip_prefix(quote) {
            return rest
                .strip_suffix(quote)
                .map(str::to_owned)
                .ok_or_else(|| format!("unterminated {quote} quote"));
        }
    }
    Ok(value.to_owned())
}

/// The settings file named on the command line (`--config PATH`, `--config=PATH`) or by
/// `PICTUREDAY_CONFIG`, if any.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let arg = arg.to_str()?;
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
        if arg == "--" {
            break;
        }
    }
    std::env::var_os(CONFIG_ENV).map(PathBuf::from)
}

/// Parses the process's arguments as `T`, with the settings file's values as defaults. Exits
/// with clap's message for bad flags, as `Parser::parse` does.
pub fn parse_args<T: CommandFactory + FromArgMatches>() -> Result<T, ConfigFileError> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut command = T::command();
    if let Some(path) = config_path(&args) {
        command = ConfigFile::read(&path)?.apply(command)?;
    }
    let matches = command.get_matches_from(args);
    Ok(T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Args {
        #[arg(long, env = "PICTUREDAY_TEST_WORKERS", default_value = "1")]
        workers: usize,
        #[arg(long, env = "PICTUREDAY_TEST_URL")]
        url: Option<String>,
    }

    fn parse(file: &str, argv: &[&str]) -> Result<Args, String> {
        let file =
            ConfigFile::parse(Path::new("pictureday.env"), file).map_err(|e| e.to_string())?;
        let command = file.apply(Args::command()).map_err(|e| e.to_string())?;
        let matches = command
            .try_get_matches_from(argv)
            .map_err(|e| e.to_string())?;
        Args::from_arg_matches(&matches).map_err(|e| e.to_string())
    }

    #[test]
    fn file_values_are_defaults_that_flags_override() -> Result<(), String> {
        let file = "# workers\nexport PICTUREDAY_TEST_WORKERS=4\n\nPICTUREDAY_TEST_URL=\"nats://a:4222\"\n";
        let args = parse(file, &["x"])?;
        assert_eq!(args.workers, 4);
        assert_eq!(args.url.as_deref(), Some("nats://a:4222"));
        let args = parse(file, &["x", "--workers", "8"])?;
        assert_eq!(args.workers, 8);
        let args = parse("", &["x"])?;
        assert_eq!(args.workers, 1);
        assert_eq!(args.url, None);
        Ok(())
    }

    #[test]
    fn mistakes_name_the_file_line_and_setting() {
        let unknown = parse("PICTUREDAY_TEST_URL=x\nPICTUREDAY_TEST_WORKRES=2\n", &["x"]);
        assert!(
            matches!(&unknown, Err(e) if e.starts_with("pictureday.env, line 2: unknown setting PICTUREDAY_TEST_WORKRES; known: PICTUREDAY_TEST_URL, PICTUREDAY_TEST_WORKERS")),
            "{unknown:?}"
        );
        let no_equals = parse("\nPICTUREDAY_TEST_URL\n", &["x"]);
        assert!(
            matches!(&no_equals, Err(e) if e == "pictureday.env, line 2: expected NAME=value, found \"PICTUREDAY_TEST_URL\""),
            "{no_equals:?}"
        );
        let twice = parse("PICTUREDAY_TEST_URL=a\nPICTUREDAY_TEST_URL=b\n", &["x"]);
        assert!(
            matches!(&twice, Err(e) if e == "pictureday.env, line 2: PICTUREDAY_TEST_URL is already set on line 1"),
            "{twice:?}"
        );
        let quote = parse("PICTUREDAY_TEST_URL=\"a\n", &["x"]);
        assert!(
            matches!(&quote, Err(e) if e == "pictureday.env, line 1: unterminated \" quote"),
            "{quote:?}"
        );
    }

    #[test]
    fn the_path_comes_from_the_flag_first() {
        let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_path(&argv(&["x", "serve", "--config", "/etc/p.env"])),
            Some(PathBuf::from("/etc/p.env"))
        );
        assert_eq!(
            config_path(&argv(&["x", "--config=/etc/q.env"])),
            Some(PathBuf::from("/etc/q.env"))
        );
    }
}
