//! Loading: which file is read, the sources merged in order (defaults < file < environment),
//! and the warnings about a password that other users can read.

use std::path::{Path, PathBuf};

use figment::providers::Format;
use figment::{Figment, Source};

use super::error::{ConfigError, Origin, bad_value};
use super::providers::{Environment, Yaml};
use super::schema::{Config, MqttConfig, PriceSet, Secret};
use super::{CONFIG_PATH_VAR, SYSTEM_CONFIG_PATH};
use crate::prices::period_name;
use std::collections::BTreeMap;

impl Config {
    /// Loads the configuration the way every subcommand does: defaults, then the config file
    /// (`path`, else `$LINKYMON_CONFIG`, else [`SYSTEM_CONFIG_PATH`] if it exists), then the
    /// environment; then validates and reads `mqtt.password_file`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_from(Config::figment(path)?)
    }

    /// Like [`Config::load`], with the warnings to log once logging is up: deprecated keys
    /// used (one line), and a password in a file that other users can read (the config file,
    /// or `mqtt.password_file`).
    pub fn load_with_warnings(path: Option<&Path>) -> Result<(Config, Vec<String>), ConfigError> {
        let figment = Config::figment(path)?;
        let (config, deprecated) = Config::load_noting(figment.clone())?;
        let mut files = Vec::new();
        if let Some(Source::File(file)) = figment
            .find_metadata("mqtt.password")
            .and_then(|metadata| metadata.source.as_ref())
        {
            files.push(("mqtt.password", file.clone()));
        }
        if let Some(file) = &config.mqtt.password_file {
            files.push(("mqtt.password_file", file.clone()));
        }
        if let Some(file) = &config.logger.database_password_file {
            files.push(("logger.database_password_file", file.clone()));
        }
        let warnings = deprecated
            .into_iter()
            .chain(files.into_iter().filter_map(|(key, file)| {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&file).ok()?.permissions().mode();
                readable_by_others(&file, mode, key)
            }))
            .collect();
        Ok((config, warnings))
    }

    /// The sources [`Config::load`] merges, without extracting them: for callers that add a
    /// provider of their own (say, command-line flags) on top.
    pub fn figment(path: Option<&Path>) -> Result<Figment, ConfigError> {
        let from_env = std::env::var_os(CONFIG_PATH_VAR)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        let file = choose_file(path, from_env, Path::new(SYSTEM_CONFIG_PATH))?;
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(Yaml::file_exact(file));
        }
        Ok(figment.merge(Environment::new()))
    }

    /// Extracts, completes and validates a configuration from any figment; tests use it with
    /// [`Yaml::string`] to stay clear of the real files and environment.
    pub fn load_from(figment: Figment) -> Result<Config, ConfigError> {
        Config::load_noting(figment).map(|(config, _)| config)
    }

    /// [`Config::load_from`], with the deprecation warning when old keys were used.
    fn load_noting(figment: Figment) -> Result<(Config, Option<String>), ConfigError> {
        let mut config: Config = figment
            .extract()
            .map_err(|error| ConfigError::from_figment(error, &figment))?;
        let locate = |error: ConfigError| error.located(&figment);
        // Validated before the deprecated price keys move, so that an error names the key as
        // figment knows it (`logger.prices.hn`) and can say where it was written.
        config.validate().map_err(locate)?;
        let deprecated = config.adopt_deprecated_prices();
        config.mqtt.read_password_file().map_err(locate)?;
        if let Some(path) = &config.logger.database_password_file {
            let password = read_password("logger.database_password_file", path).map_err(locate)?;
            config.logger.database_password = Some(password);
        }
        Ok((config, deprecated))
    }

    /// Moves the deprecated `logger.prices`, `logger.subscription_per_day` and
    /// `logger.currency` into `prices` (one set valid from the beginning of time, periods in
    /// lowercase) and sorts the price sets by date. Returns the warning line to log when any
    /// deprecated key was set. Validation already refused them next to `prices.sets`.
    fn adopt_deprecated_prices(&mut self) -> Option<String> {
        let logger = &mut self.logger;
        let used: Vec<&str> = [
            ("logger.prices", logger.prices.is_some()),
            (
                "logger.subscription_per_day",
                logger.subscription_per_day.is_some(),
            ),
            ("logger.currency", logger.currency.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        if let Some(currency) = logger.currency.take() {
            self.prices.currency = currency;
        }
        let kwh: BTreeMap<String, f64> = logger
            .prices
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(code, price)| Some((period_name(&code)?.to_owned(), price)))
            .collect();
        let daily = logger.subscription_per_day.take();
        if !kwh.is_empty() || daily.is_some_and(|d| d > 0.0) {
            self.prices.sets = vec![PriceSet::always(kwh, daily)];
        }
        self.prices.sets.sort_by_key(|set| set.from);
        (!used.is_empty()).then(|| {
            format!(
                "{} deprecated: write a `prices:` section instead (its currency, and price sets \
                 each valid from a date; see config.example.yaml)",
                match used.as_slice() {
                    [one] => format!("`{one}` is"),
                    many => format!("`{}` are", many.join("`, `")),
                }
            )
        })
    }
}

/// Reads a password file (trailing newline ignored), for the error and warning of `key`.
fn read_password(key: &str, path: &Path) -> Result<Secret, ConfigError> {
    let text = read_small_file(path)
        .map_err(|problem| bad_value(key, format!("cannot read {}: {problem}", path.display())))?;
    let password = text.trim_end_matches(['\n', '\r']);
    if password.contains('\0') {
        return Err(bad_value(
            key,
            format!("{} holds a NUL character", path.display()),
        ));
    }
    Ok(Secret::new(password))
}

impl MqttConfig {
    /// Fills `password` from `password_file`. Validation already refused both being set.
    fn read_password_file(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.password_file {
            self.password = Some(read_password("mqtt.password_file", path)?);
        }
        Ok(())
    }
}

/// The largest config or password file read, in bytes: a real one is a few kilobytes, and a
/// bound keeps a wrong path (a log, a disk image) from filling the memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Why `path` is not a file to read settings from: not a regular file (`/dev/zero` or a FIFO
/// would be read forever, or block) or larger than [`MAX_FILE_BYTES`]; `None` when it is fine.
fn unfit_file(metadata: &std::fs::Metadata) -> Option<String> {
    if !metadata.is_file() {
        Some("it is not a regular file (a directory, a device or a FIFO?)".into())
    } else if metadata.len() > MAX_FILE_BYTES {
        Some(format!(
            "it is {} bytes, more than the {MAX_FILE_BYTES} bytes a settings file may have",
            metadata.len()
        ))
    } else {
        None
    }
}

/// Reads a small text file (a password), refusing what [`unfit_file`] refuses. The path is
/// checked before it is opened (opening a FIFO with no writer would block forever), the opened
/// file again, and the read stops at the bound whatever the file turns into meanwhile.
fn read_small_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let checked = |metadata: std::io::Result<std::fs::Metadata>| match metadata {
        Ok(metadata) => unfit_file(&metadata).map_or(Ok(()), Err),
        Err(e) => Err(e.to_string()),
    };
    checked(std::fs::metadata(path))?;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    checked(file.metadata())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("it grew past {MAX_FILE_BYTES} bytes while read"));
    }
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".into())
}

/// Picks the config file: the explicit one, else the one the environment names (both must
/// exist), else the system one if present.
pub(super) fn choose_file(
    explicit: Option<&Path>,
    from_env: Option<PathBuf>,
    system: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    let chosen = match explicit.map(Path::to_path_buf).or(from_env) {
        Some(path) if !path.exists() => return Err(ConfigError::MissingFile { path }),
        Some(path) => Some(path),
        None => system.exists().then(|| system.to_path_buf()),
    };
    if let Some(path) = &chosen {
        // figment reads the whole file: refuse what would never end or fill the memory.
        let problem = match std::fs::metadata(path) {
            Ok(metadata) => unfit_file(&metadata),
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            return Err(ConfigError::Unreadable {
                origin: Some(Origin::File(path.clone())),
                problem: format!("{problem}; give a YAML file with -c FILE or LINKYMON_CONFIG"),
            });
        }
    }
    Ok(chosen)
}

/// The warning for a file holding a password (set by `key`) that users other than its owner
/// can read; `None` when only the owner can.
pub(super) fn readable_by_others(file: &Path, mode: u32, key: &str) -> Option<String> {
    (mode & 0o044 != 0).then(|| {
        format!(
            "{} holds a password ({key}) and other users can read it (mode {:04o}): \
             run `chmod 600 {}`",
            file.display(),
            mode & 0o7777,
            file.display()
        )
    })
}
