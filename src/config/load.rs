//! Loading: which file is read, the sources merged in order (defaults < file < environment),
//! and the warnings about a password that other users can read.

use std::path::{Path, PathBuf};

use figment::providers::Format;
use figment::{Figment, Source};

use super::error::{ConfigError, bad_value};
use super::providers::{Environment, Yaml};
use super::schema::{Config, MqttConfig, Secret};
use super::{CONFIG_PATH_VAR, SYSTEM_CONFIG_PATH};

impl Config {
    /// Loads the configuration the way every subcommand does: defaults, then the config file
    /// (`path`, else `$LINKYMON_CONFIG`, else [`SYSTEM_CONFIG_PATH`] if it exists), then the
    /// environment; then validates and reads `mqtt.password_file`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_from(Config::figment(path)?)
    }

    /// Like [`Config::load`], with the warnings to log once logging is up: a password in a
    /// file that other users can read (the config file, or `mqtt.password_file`).
    pub fn load_with_warnings(path: Option<&Path>) -> Result<(Config, Vec<String>), ConfigError> {
        let figment = Config::figment(path)?;
        let config = Config::load_from(figment.clone())?;
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
        let warnings = files
            .into_iter()
            .filter_map(|(key, file)| {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&file).ok()?.permissions().mode();
                readable_by_others(&file, mode, key)
            })
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
        let mut config: Config = figment
            .extract()
            .map_err(|error| ConfigError::from_figment(error, &figment))?;
        config.logger.prices = std::mem::take(&mut config.logger.prices)
            .into_iter()
            .map(|(period, price)| (period.to_ascii_uppercase(), price))
            .collect();
        let locate = |error: ConfigError| error.located(&figment);
        config.validate().map_err(locate)?;
        config.mqtt.read_password_file().map_err(locate)?;
        Ok(config)
    }
}

impl MqttConfig {
    /// Fills `password` from `password_file`. Validation already refused both being set.
    fn read_password_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.password_file else {
            return Ok(());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad_value(
                "mqtt.password_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        self.password = Some(Secret::new(text.trim_end_matches(['\n', '\r'])));
        Ok(())
    }
}

/// Picks the config file: the explicit one, else the one the environment names (both must
/// exist), else the system one if present.
pub(super) fn choose_file(
    explicit: Option<&Path>,
    from_env: Option<PathBuf>,
    system: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    match explicit.map(Path::to_path_buf).or(from_env) {
        Some(path) if !path.exists() => Err(ConfigError::MissingFile { path }),
        Some(path) => Ok(Some(path)),
        None => Ok(system.exists().then(|| system.to_path_buf())),
    }
}

/// The warning for a file holding a password (set by `key`) that users other than its owner
/// can read; `None` when only the owner can.
pub(super) fn readable_by_others(file: &Path, mode: u32, key: &str) -> Option<String> {
    (mode & 0o044 != 0).then(|| {
        format!(
            "{} holds the MQTT password ({key}) and other users can read it (mode {:04o}): \
             run `chmod 600 {}`",
            file.display(),
            mode & 0o7777,
            file.display()
        )
    })
}
