//! `vigil cib ...` and `vigil property ...`: the CIB through the local CIB
//! daemon (`org.vigil.cib1`), as cibadmin, crm_diff and `pcs property` do.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use vigil_cib::model::{check_cluster_option, cluster_option, cluster_option_names};
use vigil_cib::xml::{Document, Element};
use vigil_dbus::cib::{ManagerProxy, version_text};

/// What to do.
#[derive(Debug, Clone)]
pub enum Action {
    Show {
        section: Option<String>,
        xpath: Option<String>,
    },
    Replace {
        file: PathBuf,
        section: Option<String>,
        xpath: Option<String>,
    },
    Patch {
        file: PathBuf,
    },
    Upgrade,
    Edit,
    PropertyGet {
        name: Option<String>,
    },
    PropertySet {
        name: String,
        value: String,
        force: bool,
    },
    PropertyUnset {
        name: String,
    },
}

/// `vigil cib diff OLD NEW`: the patchset between two CIB files, computed
/// here (no daemon needed).
pub fn diff_files(old: &Path, new: &Path) -> anyhow::Result<()> {
    let a = read_cib(old)?;
    let b = read_cib(new)?;
    print!("{}", vigil_cib::patchset::diff(&a.root, &b.root).to_xml());
    Ok(())
}

fn read_cib(path: &Path) -> anyhow::Result<Document> {
    let text = read_input(path)?;
    Document::parse(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))
}

/// A file's text, `-` being stdin.
fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .context("cannot read standard input")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Runs `action` against the CIB daemon on `bus`.
pub fn run(bus: Option<String>, action: Action) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let address = vigil_runtime::bus_address(bus.as_deref());
        let conn = vigil_runtime::bus_builder(address.as_deref())
            .build()
            .await
            .context("cannot connect to the bus")?;
        let cib = ManagerProxy::builder(&conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        act(&cib, action).await.map_err(friendly)
    })
}

/// Says "is vigil-cibd running?" when nobody answers.
fn friendly(e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    if text.contains("ServiceUnknown") || text.contains("was not provided by any .service") {
        anyhow::anyhow!(
            "the CIB daemon does not answer on this bus (is vigil-cibd running? `--bus` or VIGIL_BUS selects another bus)"
        )
    } else {
        e
    }
}

fn zerr(e: zbus::Error) -> anyhow::Error {
    match e {
        zbus::Error::MethodError(_, Some(text), _) => anyhow::anyhow!("{text}"),
        zbus::Error::FDO(f) => anyhow::anyhow!("{}", fdo_text(&f)),
        other => anyhow::anyhow!("{other}"),
    }
}

fn fdo_text(e: &zbus::fdo::Error) -> String {
    let s = e.to_string();
    // "org.freedesktop.DBus.Error.Failed: text" -> "text"
    match s.split_once(": ") {
        Some((name, text)) if name.starts_with("org.freedesktop.DBus.Error.") => text.to_string(),
        _ => s,
    }
}

async fn act(cib: &ManagerProxy<'_>, action: Action) -> anyhow::Result<()> {
    match action {
        Action::Show { section, xpath } => {
            let xml = cib
                .query(
                    xpath.as_deref().unwrap_or(""),
                    section.as_deref().unwrap_or(""),
                )
                .await
                .map_err(zerr)?;
            println!("{}", xml.trim_end());
        }
        Action::Replace {
            file,
            section,
            xpath,
        } => {
            let xml = read_input(&file)?;
            if let Err(e) = Document::parse(&xml) {
                bail!("{}:{e}", file.display());
            }
            let v = cib
                .replace(
                    section.as_deref().unwrap_or(""),
                    xpath.as_deref().unwrap_or(""),
                    &xml,
                )
                .await
                .map_err(zerr)?;
            println!("CIB version {}", version_text(v));
        }
        Action::Patch { file } => {
            let xml = read_input(&file)?;
            if let Err(e) = Document::parse(&xml) {
                bail!("{}:{e}", file.display());
            }
            let v = cib.apply_patch(&xml).await.map_err(zerr)?;
            println!("CIB version {}", version_text(v));
        }
        Action::Upgrade => {
            let v = cib.upgrade().await.map_err(zerr)?;
            println!("CIB version {}", version_text(v));
        }
        Action::Edit => edit(cib).await?,
        Action::PropertyGet { name } => property_get(cib, name.as_deref()).await?,
        Action::PropertySet { name, value, force } => {
            let name = match check_cluster_option(&name, &value) {
                Ok(()) => cluster_option(&name).map_or(name, |o| o.name.to_string()),
                Err(_) if force => name,
                Err(e) => {
                    let hint = if cluster_option(&name).is_none() {
                        match closest_option(&name) {
                            Some(c) => format!(" (did you mean {c}? `--force` sets it anyway)"),
                            None => " (`--force` sets it anyway)".to_string(),
                        }
                    } else {
                        String::new()
                    };
                    bail!("{e}{hint}");
                }
            };
            let id = format!("cib-bootstrap-options-{}", id_safe(&name));
            let mut nv = Element::new("nvpair");
            nv.set_attr("id", id);
            nv.set_attr("name", name.as_str());
            nv.set_attr("value", value.as_str());
            let mut set = Element::new("cluster_property_set");
            set.set_attr("id", "cib-bootstrap-options");
            set.push(nv);
            let v = cib
                .modify("crm_config", &set.to_xml(), true)
                .await
                .map_err(zerr)?;
            println!("{name}={value} (CIB version {})", version_text(v));
        }
        Action::PropertyUnset { name } => {
            let known = cluster_option(&name);
            let mut names = vec![name.clone()];
            if let Some(o) = &known {
                names = std::iter::once(o.name)
                    .chain(o.legacy)
                    .map(str::to_string)
                    .collect();
            }
            let preds: Vec<String> = names.iter().map(|n| format!("@name='{n}'")).collect();
            let xpath = format!(
                "/cib/configuration/crm_config/cluster_property_set/nvpair[{}]",
                preds.join(" or ")
            );
            let v = cib.delete_xpath(&xpath, true).await.map_err(zerr)?;
            println!("{name} unset (CIB version {})", version_text(v));
        }
    }
    Ok(())
}

/// Letters, digits, `-`, `_` and `.` as they are; anything else becomes
/// `_` (ids are XML ids).
fn id_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn closest_option(name: &str) -> Option<&'static str> {
    cluster_option_names()
        .map(|o| (edit_distance(name, o), o))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, o)| o)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j]))
                .min(row[j] + 1)
                .min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

async fn property_get(cib: &ManagerProxy<'_>, name: Option<&str>) -> anyhow::Result<()> {
    let xml = cib.query("", "crm_config").await.map_err(zerr)?;
    let doc = Document::parse(&xml).map_err(|e| anyhow::anyhow!("the daemon's answer: {e}"))?;
    let mut set: Vec<(String, String)> = Vec::new();
    for props in doc.root.descendants() {
        if props.name != "cluster_property_set" {
            continue;
        }
        for nv in props.children_named("nvpair") {
            if let (Some(n), Some(v)) = (nv.attr("name"), nv.attr("value")) {
                set.push((n.to_string(), v.to_string()));
            }
        }
    }
    match name {
        None => {
            for (n, v) in set {
                println!("{n}={v}");
            }
        }
        Some(name) => {
            let info = cluster_option(name);
            let names: Vec<&str> = match &info {
                Some(o) => std::iter::once(o.name).chain(o.legacy).collect(),
                None => vec![name],
            };
            match set.iter().find(|(n, _)| names.contains(&n.as_str())) {
                Some((_, v)) => println!("{v}"),
                None => match info {
                    Some(o) => println!(
                        "{} is not set; the default is {}",
                        o.name,
                        o.default.unwrap_or("(none)")
                    ),
                    None => bail!("{name} is not set, and is not a cluster option Vigil knows"),
                },
            }
        }
    }
    Ok(())
}

/// `vigil cib edit`: the whole CIB in `$VISUAL`/`$EDITOR`; on save, the
/// difference goes to the cluster as a patch (so a change someone else made
/// meanwhile is not overwritten). An edit that does not parse, or that the
/// cluster refuses, is shown with the reason and opened again with the
/// edit kept; nothing is lost.
async fn edit(cib: &ManagerProxy<'_>) -> anyhow::Result<()> {
    let original = cib.query("", "").await.map_err(zerr)?;
    let before = Document::parse(&original)
        .map_err(|e| anyhow::anyhow!("the daemon's answer does not parse: {e}"))?;
    let path = std::env::temp_dir().join(format!("vigil-cib-{}.xml", std::process::id()));
    std::fs::write(&path, &original).with_context(|| format!("cannot write {}", path.display()))?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_string());
    loop {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(&path)
            .status()
            .with_context(|| format!("cannot run the editor ({editor})"))?;
        if !status.success() {
            bail!(
                "the editor ({editor}) failed ({status}); nothing was changed; your edit is in {}",
                path.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if text == original {
            let _ = std::fs::remove_file(&path);
            println!("no changes");
            return Ok(());
        }
        let problem = match Document::parse(&text) {
            Err(e) => format!("{}:{e}", path.display()),
            Ok(mut after) => {
                // Unless the edit sets the version itself, it is the next
                // configuration version.
                let v = vigil_cib::ops::version(&before.root);
                if vigil_cib::ops::version(&after.root) == v {
                    after.root.set_attr("epoch", (v.epoch + 1).to_string());
                    after.root.set_attr("num_updates", "0");
                }
                let patch = vigil_cib::patchset::diff(&before.root, &after.root).to_xml();
                match cib.apply_patch(&patch).await {
                    Ok(v) => {
                        let _ = std::fs::remove_file(&path);
                        println!("CIB version {}", version_text(v));
                        return Ok(());
                    }
                    Err(e) => format!("the cluster refused the edit: {}", zerr(e)),
                }
            }
        };
        eprintln!("vigil: {problem}");
        if !ask_again()? {
            bail!(
                "nothing was changed; your edit is kept in {}",
                path.display()
            );
        }
    }
}

/// Asks whether to edit again: yes unless the answer is "n" or there is
/// no answer (standard input at its end).
fn ask_again() -> anyhow::Result<bool> {
    eprint!("Edit again? [Y/n] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line)? == 0 {
        eprintln!();
        return Ok(false);
    }
    Ok(!line.trim().eq_ignore_ascii_case("n"))
}
