//! Key files: a 64-hex-digit ed25519 seed on one line, readable by the owner only.

use std::io::Write;
use std::path::Path;

use crate::crypto::ed25519::SigningKey;

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: expected 64 hex digits (an ed25519 seed)")]
    Format { path: String },
    #[error("{path} exists; refusing to overwrite a key")]
    Exists { path: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub fn parse_seed(text: &str) -> Option<SigningKey> {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).ok()?;
    Some(SigningKey::from_seed(&seed))
}

pub fn read_key_file(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    parse_seed(&text).ok_or_else(|| KeyFileError::Format {
        path: path.display().to_string(),
    })
}

/// Writes `key` to a new file (mode 0600 on unix); never overwrites.
pub fn write_key_file(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists {
                path: path.display().to_string(),
            }
        } else {
            io(path)(e)
        }
    })?;
    writeln!(file, "{}", hex::encode(key.seed())).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// A fresh random key from the OS generator.
pub fn generate() -> SigningKey {
    SigningKey::from_seed(&rand::random::<[u8; 32]>())
}

pub fn generate_key_file(path: &Path) -> Result<SigningKey, KeyFileError> {
    let key = generate();
    write_key_file(path, &key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.hex");
        let key = generate_key_file(&path).unwrap();
        assert_eq!(read_key_file(&path).unwrap().seed(), key.seed());
        assert!(matches!(
            generate_key_file(&path),
            Err(KeyFileError::Exists { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn rejects_malformed_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.hex");
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            read_key_file(&path),
            Err(KeyFileError::Format { .. })
        ));
        assert!(matches!(
            read_key_file(&dir.path().join("missing")),
            Err(KeyFileError::Io { .. })
        ));
    }
}
