//! LVFS cabinet archives: a `.cab` holding a `*.metainfo.xml` (AppStream
//! firmware component) and the payload it describes.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use dfu::file::FileSource as _;
use sha2::{Digest as _, Sha256};

use crate::blob::BlobStore;

use super::{
    finish_from_file, prepare_dfu, ImportError, ImportOptions, OnDisk, Payload, Prepared,
    MAX_CAB_PAYLOAD_LEN,
};
use crate::package::{
    check_name, HardwareId, LvfsInfo, SourceFormat, UpdateProtocol, Urgency, VersionFormat,
};

/// Largest metainfo document read.
const MAX_METAINFO_LEN: u32 = 1 << 20;
/// Most files a cabinet may hold.
const MAX_CAB_FILES: usize = 64;
/// Most GUIDs one component may provide.
const MAX_GUIDS: usize = 64;

/// What is wrong with a cabinet.
#[derive(Debug, thiserror::Error)]
pub enum CabError {
    /// Not a readable cabinet.
    #[error("not a valid cabinet archive: {0}")]
    Archive(std::io::Error),
    /// A structural limit.
    #[error("cabinet {0}")]
    Limit(String),
    /// No `*.metainfo.xml`.
    #[error("cabinet holds no *.metainfo.xml")]
    NoMetainfo,
    /// More than one component: ambiguous.
    #[error("cabinet holds {0} metainfo files; import supports exactly one component")]
    SeveralMetainfo(usize),
    /// XML that does not parse.
    #[error("{file}: malformed XML: {why}")]
    Xml {
        /// The metainfo file.
        file: String,
        /// The parser's message (with line and column).
        why: String,
    },
    /// A required element or attribute is missing or bad.
    #[error("{file}: {why}")]
    Metainfo {
        /// The metainfo file.
        file: String,
        /// What is missing or wrong.
        why: String,
    },
    /// A vendor signature catalog (`.jcat`) is malformed or disagrees with
    /// the payload.
    #[error("vendor signature: {0}")]
    Jcat(String),
    /// A vendor signature was required and none verified.
    #[error("no vendor signature by a trusted key for {payload:?}: {why}")]
    Unsigned {
        /// The payload.
        payload: String,
        /// What was found instead.
        why: String,
    },
    /// The payload named by the metainfo is not in the cabinet.
    #[error("payload {0:?} named by the metainfo is not in the cabinet")]
    MissingPayload(String),
    /// The payload does not match the metainfo checksum.
    #[error(
        "payload {file:?} fails its {kind} checksum: metainfo says {expected}, content is {actual}"
    )]
    Checksum {
        /// The payload file.
        file: String,
        /// sha1 or sha256.
        kind: String,
        /// What the metainfo says.
        expected: String,
        /// What the content hashes to.
        actual: String,
    },
}

/// What the metainfo of a cabinet says about its newest release.
#[derive(Debug, Clone)]
pub(crate) struct CabRelease {
    pub(crate) info: LvfsInfo,
    pub(crate) name: String,
    pub(crate) vendor: Option<String>,
    pub(crate) version: String,
    pub(crate) version_format: VersionFormat,
    pub(crate) urgency: Option<Urgency>,
    pub(crate) description: String,
    pub(crate) install_duration_secs: Option<u32>,
    pub(crate) protocol: Option<UpdateProtocol>,
    pub(crate) hardware_ids: Vec<HardwareId>,
    checksums: Vec<ContentChecksum>,
}

/// One `<checksum target="content">` of the release.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ContentChecksum {
    /// `filename=`: the payload it describes (empty: not said).
    file: String,
    /// `type=`, lower case (`sha1` when absent, as AppStream says).
    kind: String,
    /// The hex digest; `None` for the empty element LVFS fills in on
    /// upload (fwupd accepts it): the import computes the digest itself.
    value: Option<String>,
}

pub(crate) fn prepare_cab(
    path: &Path,
    opts: &ImportOptions,
    blobs: &BlobStore,
) -> Result<Prepared, ImportError> {
    let cab_err = |source| ImportError::Cab {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(|source| ImportError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut cabinet = cab::Cabinet::new(file).map_err(|e| cab_err(CabError::Archive(e)))?;
    let mut entries: Vec<(String, u32)> = Vec::new();
    for folder in cabinet.folder_entries() {
        for f in folder.file_entries() {
            entries.push((f.name().to_owned(), f.uncompressed_size()));
            if entries.len() > MAX_CAB_FILES {
                return Err(cab_err(CabError::Limit(format!(
                    "holds more than {MAX_CAB_FILES} files"
                ))));
            }
        }
    }
    let metainfos: Vec<&(String, u32)> = entries
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().ends_with(".metainfo.xml"))
        .collect();
    let (meta_name, meta_len) = match metainfos[..] {
        [] => return Err(cab_err(CabError::NoMetainfo)),
        [one] => one.clone(),
        _ => return Err(cab_err(CabError::SeveralMetainfo(metainfos.len()))),
    };
    if meta_len > MAX_METAINFO_LEN {
        return Err(cab_err(CabError::Limit(format!(
            "metainfo {meta_name:?} is larger than {MAX_METAINFO_LEN} bytes"
        ))));
    }
    let xml = read_entry(&mut cabinet, &meta_name, u64::from(meta_len)).map_err(cab_err)?;
    let xml = String::from_utf8(xml).map_err(|_| {
        cab_err(CabError::Xml {
            file: meta_name.clone(),
            why: "not UTF-8".into(),
        })
    })?;
    let release = parse_metainfo(&meta_name, &xml).map_err(cab_err)?;

    let payload_name = payload_name(&release, &entries, &meta_name).map_err(cab_err)?;
    let payload_len = entries
        .iter()
        .find(|(n, _)| *n == payload_name)
        .map(|(_, l)| u64::from(*l))
        .ok_or_else(|| cab_err(CabError::MissingPayload(payload_name.clone())))?;
    if payload_len > MAX_CAB_PAYLOAD_LEN {
        return Err(ImportError::TooLarge {
            path: path.to_owned(),
            len: payload_len,
            limit: MAX_CAB_PAYLOAD_LEN,
            format: "cabinet payload",
        });
    }
    let spool = blobs.temp_file("cab-").map_err(|e| ImportError::Io {
        path: blobs.root().join("tmp"),
        source: std::io::Error::other(e),
    })?;
    let (spool, digests) =
        spool_entry(&mut cabinet, &payload_name, payload_len, spool).map_err(cab_err)?;
    verify_checksums(&release, &payload_name, &digests).map_err(cab_err)?;
    let vendor_signature = vendor_signature(
        &mut cabinet,
        &entries,
        (&payload_name, &digests, spool.path()),
        (&meta_name, xml.as_bytes()),
        opts,
    )
    .map_err(cab_err)?;

    let mut release = release;
    release.info.payload_name = payload_name.clone();
    release.info.vendor_signature = vendor_signature;
    let file_name = opts
        .file_name
        .clone()
        .unwrap_or_else(|| payload_name.clone());
    check_name("file name", &file_name)?;
    // A payload is a DFU file when it parses as one, or when it starts like
    // one (a DfuSe prefix or a valid suffix) and fails: then it is refused.
    let mut on_disk = OnDisk::open(spool.path())?;
    let inspected = on_disk.inspect();
    let dfu = match &inspected {
        Err(ImportError::Dfu { .. }) => starts_like_dfu(&mut on_disk, payload_len)?,
        _ => true,
    };
    drop(on_disk);
    if dfu {
        // Errors name the cabinet, not the temp file.
        let summary = inspected.map_err(|e| match e {
            ImportError::Dfu { source, .. } => ImportError::Dfu {
                path: path.to_owned(),
                source,
            },
            other => other,
        })?;
        let payload = Payload::Spooled(spool);
        return prepare_dfu(&summary, payload, opts, file_name, Some(release));
    }
    let hardware_ids = if opts.hardware_ids.is_empty() {
        release.hardware_ids.clone()
    } else {
        opts.hardware_ids.clone()
    };
    if hardware_ids.is_empty() {
        return Err(ImportError::Required {
            field: "hardware id",
            format: "cabinets whose payload has no DFU suffix",
            hint: "--hardware-id VID:PID",
        });
    }
    let protocol = opts
        .protocol
        .clone()
        .or_else(|| release.protocol.clone())
        .unwrap_or_default();
    finish_from_file(
        opts,
        "cabinet",
        hardware_ids,
        protocol,
        SourceFormat::Cab,
        Some(release),
        file_name,
        Payload::Spooled(spool),
    )
}

fn read_entry(cabinet: &mut cab::Cabinet<File>, name: &str, len: u64) -> Result<Vec<u8>, CabError> {
    let reader = cabinet.read_file(name).map_err(CabError::Archive)?;
    let mut out = Vec::with_capacity(len as usize);
    reader
        .take(len + 1)
        .read_to_end(&mut out)
        .map_err(CabError::Archive)?;
    if out.len() as u64 != len {
        return Err(CabError::Limit(format!(
            "entry {name:?} holds {} bytes but its header says {len}",
            out.len()
        )));
    }
    Ok(out)
}

fn payload_name(
    release: &CabRelease,
    entries: &[(String, u32)],
    meta_name: &str,
) -> Result<String, CabError> {
    if let Some(c) = release.checksums.iter().find(|c| !c.file.is_empty()) {
        return Ok(c.file.clone());
    }
    // No checksum names it: the one file that is not metadata or a signature.
    let candidates: Vec<&String> = entries
        .iter()
        .map(|(n, _)| n)
        .filter(|n| {
            let l = n.to_ascii_lowercase();
            *n != meta_name && !l.ends_with(".jcat") && !l.ends_with(".asc") && !l.ends_with(".p7b")
        })
        .collect();
    match candidates[..] {
        [one] => Ok(one.clone()),
        [] => Err(CabError::MissingPayload("(no payload file)".into())),
        _ => Err(CabError::Metainfo {
            file: meta_name.to_owned(),
            why: format!(
                "{} candidate payload files and no <checksum filename=…> to choose one",
                candidates.len()
            ),
        }),
    }
}

/// Whether a payload that does not parse as a DFU file starts like one: a
/// DfuSe prefix, or a valid DFU suffix.
fn starts_like_dfu(file: &mut OnDisk<'_>, len: u64) -> Result<bool, ImportError> {
    let mut head = [0; 5];
    if len >= 5 {
        file.read_at(0, &mut head).map_err(|e| file.io_error(e))?;
        if &head == b"DfuSe" {
            return Ok(true);
        }
    }
    dfu::file::has_dfu_suffix_in(file).map_err(|e| file.io_error(e))
}

/// Most `*.jcat` files read from one cabinet.
const MAX_JCATS: usize = 4;

/// The vendor signature of the payload and its metainfo among the
/// cabinet's `*.jcat` files (see [`jcat`]), when vendor keys are trusted;
/// refused when required and absent.
fn vendor_signature(
    cabinet: &mut cab::Cabinet<File>,
    entries: &[(String, u32)],
    (payload_name, digests, spooled): (&str, &Digests, &Path),
    (meta_name, meta): (&str, &[u8]),
    opts: &ImportOptions,
) -> Result<Option<jcat::VendorSignature>, CabError> {
    let unsigned = |why: &str| CabError::Unsigned {
        payload: payload_name.to_owned(),
        why: why.to_owned(),
    };
    if opts.vendor_keys.is_empty() {
        return if opts.require_vendor_signature {
            Err(unsigned(
                "no vendor key is trusted (`catalog vendor-keys add NAME FILE`)",
            ))
        } else {
            Ok(None)
        };
    }
    let names: Vec<&(String, u32)> = entries
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().ends_with(".jcat"))
        .collect();
    if names.len() > MAX_JCATS {
        return Err(CabError::Limit(format!(
            "holds {} .jcat files (at most {MAX_JCATS})",
            names.len()
        )));
    }
    let mut jcats = Vec::new();
    for (name, len) in names {
        if *len > MAX_METAINFO_LEN {
            return Err(CabError::Limit(format!(
                "{name:?} is larger than {MAX_METAINFO_LEN} bytes"
            )));
        }
        jcats.push((name.clone(), read_entry(cabinet, name, u64::from(*len))?));
    }
    let mut read_payload =
        || std::fs::read(spooled).map_err(|e| format!("reading the payload: {e}"));
    let meta_digests = Digests::of(meta);
    let mut read_meta = || Ok(meta.to_vec());
    let mut files = [
        jcat::SignedFile {
            name: payload_name,
            digests,
            read: &mut read_payload,
        },
        jcat::SignedFile {
            name: meta_name,
            digests: &meta_digests,
            read: &mut read_meta,
        },
    ];
    let found = jcat::verify(&jcats, &mut files, &opts.vendor_keys).map_err(CabError::Jcat)?;
    match found {
        None if opts.require_vendor_signature => Err(unsigned(if jcats.is_empty() {
            "the cabinet has no .jcat"
        } else {
            "its .jcat has no ed25519 signatures of the payload and the metainfo by one trusted vendor key"
        })),
        found => Ok(found),
    }
}

/// The digests an LVFS metainfo or a jcat may give for a payload.
struct Digests {
    sha256: String,
    sha1: String,
    sha512: String,
}

impl Digests {
    fn of(bytes: &[u8]) -> Self {
        Self {
            sha256: hex::encode(Sha256::digest(bytes)),
            sha1: hex::encode(sha1::Sha1::digest(bytes)),
            sha512: hex::encode(sha2::Sha512::digest(bytes)),
        }
    }
}

/// Copies a cabinet entry into `spool` while hashing it; checks its length
/// against the header's.
fn spool_entry(
    cabinet: &mut cab::Cabinet<File>,
    name: &str,
    len: u64,
    mut spool: tempfile::NamedTempFile,
) -> Result<(tempfile::NamedTempFile, Digests), CabError> {
    let mut reader = cabinet
        .read_file(name)
        .map_err(CabError::Archive)?
        .take(len + 1);
    let (mut sha256, mut sha1) = (Sha256::new(), sha1::Sha1::new());
    let mut sha512 = sha2::Sha512::new();
    let mut buf = vec![0; 64 << 10];
    let mut copied = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CabError::Archive(e)),
        };
        sha256.update(&buf[..n]);
        sha1.update(&buf[..n]);
        sha512.update(&buf[..n]);
        spool.write_all(&buf[..n]).map_err(CabError::Archive)?;
        copied += n as u64;
    }
    if copied != len {
        return Err(CabError::Limit(format!(
            "entry {name:?} holds {copied} bytes but its header says {len}"
        )));
    }
    spool.flush().map_err(CabError::Archive)?;
    let digests = Digests {
        sha256: hex::encode(sha256.finalize()),
        sha1: hex::encode(sha1.finalize()),
        sha512: hex::encode(sha512.finalize()),
    };
    Ok((spool, digests))
}

fn verify_checksums(
    release: &CabRelease,
    payload_name: &str,
    digests: &Digests,
) -> Result<(), CabError> {
    for (kind, expected) in release
        .checksums
        .iter()
        .filter(|c| c.file == payload_name || c.file.is_empty())
        .filter_map(|c| Some((c.kind.as_str(), c.value.as_deref()?)))
    {
        let actual = match kind {
            "sha256" => &digests.sha256,
            "sha1" => &digests.sha1,
            // Other kinds (md5, sha512) are informational; sha1/sha256 suffice.
            _ => continue,
        };
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(CabError::Checksum {
                file: payload_name.to_owned(),
                kind: kind.to_owned(),
                expected: expected.to_owned(),
                actual: actual.clone(),
            });
        }
    }
    Ok(())
}

fn child<'a, 'i>(parent: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    parent.children().find(|n| n.has_tag_name(name))
}

/// Parses an AppStream firmware component.
pub(crate) fn parse_metainfo(file: &str, xml: &str) -> Result<CabRelease, CabError> {
    let doc = roxmltree::Document::parse_with_options(
        xml,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: 100_000,
            ..Default::default()
        },
    )
    .map_err(|e| CabError::Xml {
        file: file.to_owned(),
        why: e.to_string(),
    })?;
    let bad = |why: String| CabError::Metainfo {
        file: file.to_owned(),
        why,
    };
    let component = doc.root_element();
    if component.tag_name().name() != "component" {
        return Err(bad(format!(
            "root element is <{}>, expected <component type=\"firmware\">",
            component.tag_name().name()
        )));
    }
    if component.attribute("type") != Some("firmware") {
        return Err(bad("<component> is not of type=\"firmware\"".into()));
    }
    let text = |n: roxmltree::Node<'_, '_>| n.text().unwrap_or("").trim().to_owned();
    let component_id = child(component, "id")
        .map(text)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("missing <id>".into()))?;
    let name = child(component, "name")
        .map(text)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("missing <name>".into()))?;
    check_name("name", &name).map_err(|e| bad(e.to_string()))?;
    let vendor = child(component, "developer_name")
        .or_else(|| child(component, "developer").and_then(|d| child(d, "name")))
        .map(text)
        .filter(|s| !s.is_empty());
    let guids: Vec<String> = child(component, "provides")
        .into_iter()
        .flat_map(|p| p.children().filter(|n| n.has_tag_name("firmware")))
        .filter(|n| n.attribute("type") == Some("flashed"))
        .map(text)
        .collect();
    if guids.len() > MAX_GUIDS {
        return Err(bad(format!("more than {MAX_GUIDS} provided GUIDs")));
    }
    if let Some(g) = guids.iter().find(|g| !is_guid(g)) {
        return Err(bad(format!(
            "<firmware type=\"flashed\"> {g:?} is not a GUID"
        )));
    }
    let custom = |key: &str| {
        child(component, "custom")
            .into_iter()
            .flat_map(|c| c.children().filter(|n| n.has_tag_name("value")))
            .find(|n| n.attribute("key") == Some(key))
            .map(text)
    };
    let release = child(component, "releases")
        .and_then(|r| r.children().find(|n| n.has_tag_name("release")))
        .ok_or_else(|| bad("missing <releases><release>".into()))?;
    let version = release
        .attribute("version")
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad("<release> has no version attribute".into()))?
        .to_owned();
    let version_format = match custom("LVFS::VersionFormat") {
        Some(f) => f
            .parse()
            .map_err(|e: crate::package::VersionError| bad(e.to_string()))?,
        None => VersionFormat::Plain,
    };
    let version = normalise_version(&version, custom("LVFS::VersionFormat").as_deref());
    let urgency = match release.attribute("urgency") {
        Some(u) => Some(u.parse::<Urgency>().map_err(|e| bad(e.to_string()))?),
        None => None,
    };
    let install_duration_secs = match release.attribute("install_duration") {
        Some(d) => Some(
            d.trim()
                .parse::<u32>()
                .map_err(|_| bad(format!("install_duration {d:?} is not a number of seconds")))?,
        ),
        None => None,
    };
    let description = child(release, "description")
        .map(|d| {
            d.descendants()
                .filter(|n| n.has_tag_name("p") || n.has_tag_name("li"))
                .map(|n| {
                    let t: String = n
                        .descendants()
                        .filter(|t| t.is_text())
                        .filter_map(|t| t.text())
                        .collect();
                    if n.has_tag_name("li") {
                        format!("- {}", t.trim())
                    } else {
                        t.trim().to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let mut checksums = Vec::new();
    // Only the release's own checksums: those inside <artifacts> describe
    // the cabinet as downloaded, not its payload.
    for c in release
        .children()
        .filter(|n| n.has_tag_name("checksum") && n.attribute("target") == Some("content"))
    {
        let kind = c.attribute("type").unwrap_or("sha1").to_ascii_lowercase();
        let value = text(c);
        if !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("<checksum type={kind:?}> is not a hex digest")));
        }
        checksums.push(ContentChecksum {
            file: c.attribute("filename").unwrap_or("").to_owned(),
            kind,
            value: (!value.is_empty()).then_some(value),
        });
    }
    let protocol = match custom("LVFS::UpdateProtocol") {
        Some(p) => Some(
            p.parse()
                .map_err(|e: crate::package::ModelError| bad(e.to_string()))?,
        ),
        None => None,
    };
    Ok(CabRelease {
        info: LvfsInfo {
            component_id,
            guids,
            payload_name: String::new(),
            vendor_signature: None,
        },
        name,
        vendor,
        version,
        version_format,
        urgency,
        description,
        install_duration_secs,
        protocol,
        hardware_ids: Vec::new(),
        checksums,
    })
}

/// LVFS allows a release version as a raw integer with a format that says how
/// to print it; turn that into the dotted form devices report.
fn normalise_version(version: &str, format: Option<&str>) -> String {
    let Ok(n) = version.parse::<u64>() else {
        return version.to_owned();
    };
    if n > u64::from(u32::MAX) {
        return version.to_owned();
    }
    match format {
        Some("triplet") => format!("{}.{}.{}", n >> 24, (n >> 16) & 0xff, n & 0xffff),
        Some("quad") => format!(
            "{}.{}.{}.{}",
            n >> 24,
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff
        ),
        Some("pair") => format!("{}.{}", n >> 16, n & 0xffff),
        Some("bcd") if n <= 0xffff => format!("{:x}.{:02x}", n >> 8, n & 0xff),
        _ => version.to_owned(),
    }
}

fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub(crate) mod jcat;
#[cfg(test)]
mod tests;
