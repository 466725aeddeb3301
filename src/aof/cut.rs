//! Point-in-time cut of an AOF set: a new appendonlydir holding the set up to a time (`--to`) or
//! up to a command (`--before-command`), never inside a MULTI / EXEC block, written under a
//! temporary name and renamed when complete.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::aof::is_rdb;
use crate::aof::manifest::{FileType, Manifest, ManifestEntry};
use crate::aof::resp::{CommandKind, Event, RespParser, line_at};
use crate::aof::set::{AofSet, Role, Stamp, rdb_aux_times};
use crate::error::ErrorKind;
use crate::verify;

/// Why `aof cut` (or a copy of a set) failed.
#[derive(Debug)]
pub enum CutError {
    /// The set cannot give what was asked (exit 1).
    Refused(String),
    /// Writing the result failed, or the target exists (exit 2).
    Io(String),
}

impl std::fmt::Display for CutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CutError::Refused(s) | CutError::Io(s) => write!(f, "{s}"),
        }
    }
}

/// What a cut did with one loaded file of the set.
#[derive(Debug, Clone, Serialize)]
pub struct CutFile {
    /// The file's name (bytes).
    #[serde(serialize_with = "crate::json::ser_bytes")]
    pub name: Vec<u8>,
    /// Its role in the set.
    pub role: Role,
    /// "copied", "linked", "rewritten" (cut short) or "dropped".
    pub action: &'static str,
    /// Its size in the set, bytes.
    pub bytes_in: u64,
    /// Its size in the output, bytes (0 when dropped).
    pub bytes_out: u64,
}

/// Where a cut stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Unix seconds: every command logged in seconds up to this one.
    Time(i64),
    /// Right before the command at this 1-based position of the set (`aof find` prints it);
    /// before its MULTI when it is inside a transaction.
    BeforeCommand(u64),
}

/// What `aof cut` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct CutSummary {
    /// The time cut at; for a cut before a command, the last `#TS` before it.
    pub to: Stamp,
    /// The position of the command the cut stops before (`--before-command`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_command: Option<u64>,
    /// The directory written.
    pub output: String,
    /// The manifest's file name in it.
    pub manifest: String,
    /// The point in time the base holds (its `ctime`, or its first `#TS`).
    pub base_time: Option<Stamp>,
    /// Every loaded file of the set with what was done with it, in loading order.
    pub files: Vec<CutFile>,
    /// Commands kept from the incr files (all of them for a single file).
    pub commands_kept: u64,
    /// The last `#TS` kept, and the first one left out.
    pub last_kept_ts: Option<Stamp>,
    /// The first `#TS` left out.
    pub first_dropped_ts: Option<Stamp>,
    /// Notes on the result (an incomplete tail of the last file left out, ...).
    pub warnings: Vec<String>,
}

impl CutSummary {
    /// A summary of nothing kept yet, for a cut to `to` (or before command `before`).
    fn empty(to: i64, before: Option<u64>) -> CutSummary {
        CutSummary {
            to: Stamp::new(to),
            before_command: before,
            output: String::new(),
            manifest: String::new(),
            base_time: None,
            files: Vec::new(),
            commands_kept: 0,
            last_kept_ts: None,
            first_dropped_ts: None,
            warnings: Vec::new(),
        }
    }
}

enum Action {
    Copy,
    Truncate(u64),
    Drop,
}

impl AofSet {
    /// Finds where a restore to `stop` ends: per loaded part, what to keep.
    fn plan_cut(&self, stop: Stop) -> Result<(Vec<Action>, CutSummary), CutError> {
        let to = match stop {
            Stop::Time(t) => t,
            Stop::BeforeCommand(_) => i64::MAX,
        };
        let refuse = |s: String| Err(CutError::Refused(s));
        if let Some((e, why)) = self.missing.first() {
            return refuse(format!("{} (manifest line {}) is {why}: the set cannot be loaded", e.name_lossy(), e.line));
        }
        let before = match stop {
            Stop::BeforeCommand(n) => Some(n),
            Stop::Time(_) => None,
        };
        let mut sum = CutSummary::empty(to, before);
        let mut actions: Vec<Action> = Vec::new();
        let mut ts: Option<i64> = None;
        let mut cut_found = false;
        let mut annotations = 0u64;
        let mut commands_in_log = 0u64;
        // Position of the last command read, over every loaded part (as `commands()` counts).
        let mut position = 0u64;
        // Destructive commands kept since the last kept annotation: (position, name, ts).
        let mut last_second: Vec<(u64, String)> = Vec::new();
        let last = self.parts.len().saturating_sub(1);
        for (i, part) in self.parts.iter().enumerate() {
            let data: &[u8] = &part.data;
            let pname = part.name_lossy();
            if cut_found {
                actions.push(Action::Drop);
                continue;
            }
            let mut start = 0usize;
            if is_rdb(data) {
                // Fully verified: a restore must not start from a damaged snapshot.
                let r = verify::verify_preamble(&pname, data, &verify::Options::default());
                if let Some(e) = r.errors.first().filter(|_| !r.ok) {
                    return refuse(format!(
                        "{pname}: the RDB part does not verify: offset {}: {} ({}); run `rdbtool verify`",
                        e.offset,
                        e.message,
                        e.kind.as_str()
                    ));
                }
                start = data.len() - r.trailing_bytes as usize;
                if matches!(part.role, Role::Base | Role::Single) {
                    sum.base_time = rdb_aux_times(data).0.map(Stamp::new);
                }
            }
            let cuttable = part.role != Role::Base;
            let mut p = RespParser::new(data, start, ts);
            let mut argv = Vec::new();
            let mut first_ann = true;
            let mut kept_before_multi = sum.commands_kept;
            let action = loop {
                match p.next_event(&mut argv) {
                    Ok(Some(Event::Annotation(a))) => {
                        let Some(t) = a.ts else { continue };
                        // An AOF-format base starts with the rewrite's #TS; so does an old
                        // single file after a rewrite (before it: nothing to restore).
                        let leading = part.role == Role::Single && a.offset == start as u64;
                        if (part.role == Role::Base || leading) && first_ann && sum.base_time.is_none() {
                            sum.base_time = Some(Stamp::new(t));
                        }
                        first_ann = false;
                        if !cuttable {
                            continue;
                        }
                        annotations += 1;
                        if t > to {
                            cut_found = true;
                            if p.open_multi().is_some() {
                                sum.commands_kept = kept_before_multi;
                            }
                            sum.first_dropped_ts = Some(Stamp::new(t));
                            let at = p.open_multi().unwrap_or(a.offset);
                            break if at as usize >= data.len() { Action::Copy } else { Action::Truncate(at) };
                        }
                        sum.last_kept_ts = Some(Stamp::new(t));
                        last_second.clear();
                    }
                    Ok(Some(Event::Command(m))) => {
                        position += 1;
                        if let Stop::BeforeCommand(n) = stop
                            && position == n
                        {
                            if !cuttable {
                                return refuse(format!(
                                    "command {n} is in the base file {pname}, a snapshot: a cut can only stop inside the incr files after it"
                                ));
                            }
                            cut_found = true;
                            if m.multi.is_some() {
                                sum.commands_kept = kept_before_multi;
                            }
                            sum.to = Stamp::new(m.ts.or(sum.base_time.map(|b| b.unix)).unwrap_or(0));
                            break Action::Truncate(m.multi.unwrap_or(m.offset));
                        }
                        if cuttable && matches!(stop, Stop::Time(_)) && super::commands::is_destructive(&argv) {
                            last_second.push((position, String::from_utf8_lossy(argv[0]).to_ascii_uppercase()));
                        }
                        if cuttable {
                            commands_in_log += 1;
                            match m.kind {
                                CommandKind::Multi => kept_before_multi = sum.commands_kept,
                                CommandKind::Other => sum.commands_kept += 1,
                                _ => {}
                            }
                        }
                    }
                    Ok(None) => break Action::Copy,
                    Err(e) if e.kind == ErrorKind::Truncated && i == last && cuttable => {
                        let ok = p.ok_up_to();
                        if p.open_multi().is_some() {
                            sum.commands_kept = kept_before_multi;
                        }
                        sum.warnings.push(format!(
                            "{pname}: {} (offset {}); the incomplete tail, {} bytes from offset {ok}, is left out",
                            e.message,
                            e.offset,
                            data.len() as u64 - ok
                        ));
                        break Action::Truncate(ok);
                    }
                    Err(e) => {
                        return refuse(format!(
                            "{pname}: offset {} (line {}): {} ({}): the set is damaged before the cut point; run `rdbtool verify`",
                            e.offset,
                            line_at(data, e.offset),
                            e.message,
                            e.kind.as_str()
                        ));
                    }
                }
            };
            ts = p.ts();
            actions.push(action);
        }
        if let Stop::BeforeCommand(n) = stop
            && !cut_found
        {
            return refuse(format!("the set has {position} commands: there is no command {n} to stop before"));
        }
        if let Some(b) = sum.base_time
            && to < b.unix
        {
            return refuse(format!(
                "{} is before the base file's time, {}: the base already holds what came later (the earliest reachable time is {})",
                Stamp::new(to),
                b,
                b
            ));
        }
        if annotations == 0 && commands_in_log > 0 && matches!(stop, Stop::Time(_)) {
            return refuse(
                "the log has no #TS annotations (aof-timestamp-enabled was off): there is no time to cut at".into(),
            );
        }
        if sum.base_time.is_none() && annotations == 0 && matches!(stop, Stop::Time(_)) {
            return refuse("the set holds no time at all (no base ctime, no #TS annotations)".into());
        }
        for (pos, name) in &last_second {
            let when = sum.last_kept_ts.map(|t| format!(" (logged at or after {t})")).unwrap_or_default();
            sum.warnings.push(format!(
                "the cut keeps {name}, command {pos}{when}, in the last second it keeps: to stop right before it, cut with --before-command {pos}"
            ));
        }
        if !cut_found && let Some(t) = sum.last_kept_ts {
            sum.warnings
                .push(format!("{} is at or after the last annotation, {t}: everything is kept", Stamp::new(to)));
        }
        Ok((actions, sum))
    }

    /// Writes a new appendonlydir at `out` holding the base and every command up to the first
    /// `#TS` annotation after `to` (unix seconds), never splitting a MULTI/EXEC block. The
    /// input is not modified; `out` is built under a temporary name beside it and renamed.
    pub fn cut(&self, to: i64, out: &Path, link: bool) -> Result<CutSummary, CutError> {
        self.cut_at(Stop::Time(to), out, link)
    }

    /// `cut` at a time or right before a command.
    pub fn cut_at(&self, stop: Stop, out: &Path, link: bool) -> Result<CutSummary, CutError> {
        let (actions, sum) = self.plan_cut(stop)?;
        self.write_dir(&actions, out, link, sum)
    }

    /// Writes a new AOF directory at `out` with every loaded file as it is (no history), the
    /// same way as `cut`.
    pub fn copy_to(&self, out: &Path, link: bool) -> Result<CutSummary, CutError> {
        if let Some((e, why)) = self.missing.first() {
            return Err(CutError::Refused(format!("{} (manifest line {}) is {why}", e.name_lossy(), e.line)));
        }
        let actions: Vec<Action> = self.parts.iter().map(|_| Action::Copy).collect();
        let sum = CutSummary::empty(i64::MAX, None);
        self.write_dir(&actions, out, link, sum)
    }

    fn write_dir(
        &self,
        actions: &[Action],
        out: &Path,
        link: bool,
        mut sum: CutSummary,
    ) -> Result<CutSummary, CutError> {
        let io = |what: &str, p: &Path, e: io::Error| CutError::Io(format!("{what} {}: {e}", p.display()));
        if fs::symlink_metadata(out).is_ok() {
            return Err(CutError::Io(format!("{} exists: give a new directory", out.display())));
        }
        let out_name =
            out.file_name().ok_or_else(|| CutError::Io(format!("{}: not a directory name", out.display())))?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Parents are created as `split` creates its output directory; errors name the user's path.
        fs::create_dir_all(&parent).map_err(|e| io("cannot create the parent of", out, e))?;
        let tmp = parent.join(format!(".{}.tmp-{}", out_name.to_string_lossy(), std::process::id()));
        crate::cleanup::create_path(|| fs::create_dir(&tmp), |_| tmp.clone())
            .map_err(|e| io(&format!("cannot create a temporary directory beside {}:", out.display()), &tmp, e))?;
        // The new directory is as private as the set's (an appendonlydir of 0700 stays 0700).
        let dir_mode = fs::metadata(&self.path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o755);
        // A single AOF file: who may read it may list the directory.
        let dir_mode =
            if self.is_multipart() { dir_mode } else { 0o700 | (dir_mode & 0o044) | ((dir_mode & 0o044) >> 2) };
        let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(dir_mode));
        let res = self.write_cut(actions, &tmp, link, &mut sum).and_then(|()| {
            fsync_dir(&tmp).map_err(|e| io("cannot sync", &tmp, e))?;
            fs::rename(&tmp, out).map_err(|e| io("cannot rename the temporary directory to", out, e))?;
            fsync_dir(&parent).map_err(|e| io("cannot sync", &parent, e))
        });
        if res.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        crate::cleanup::remove_path(&tmp);
        res?;
        sum.output = out.display().to_string();
        Ok(sum)
    }

    fn write_cut(&self, actions: &[Action], tmp: &Path, link: bool, sum: &mut CutSummary) -> Result<(), CutError> {
        let io = |what: &str, p: &Path, e: io::Error| CutError::Io(format!("{what} {}: {e}", p.display()));
        let mut entries = Vec::new();
        for (part, action) in self.parts.iter().zip(actions) {
            let dst = tmp.join(OsStr::from_bytes(&part.name));
            let len = part.data.len() as u64;
            let (name, bytes_out) = match action {
                Action::Drop => ("dropped", 0),
                Action::Copy if link => {
                    fs::hard_link(&part.path, &dst).map_err(|e| {
                        io("cannot hard-link (same filesystem needed; leave out --link to copy)", &part.path, e)
                    })?;
                    ("linked", len)
                }
                Action::Copy => {
                    write_file(&dst, &part.data, mode_of(&part.path)).map_err(|e| io("cannot write", &dst, e))?;
                    ("copied", len)
                }
                Action::Truncate(n) => {
                    write_file(&dst, &part.data[..*n as usize], mode_of(&part.path))
                        .map_err(|e| io("cannot write", &dst, e))?;
                    ("rewritten", *n)
                }
            };
            sum.files.push(CutFile {
                name: part.name.clone(),
                role: part.role,
                action: name,
                bytes_in: len,
                bytes_out,
            });
            if matches!(action, Action::Drop) {
                continue;
            }
            let mut e = part.entry.clone().unwrap_or_else(|| ManifestEntry::new(part.name.clone(), 1, FileType::Base));
            if matches!(action, Action::Truncate(_)) {
                // The file no longer ends where it ended when Redis closed it.
                e.remove_extra("endoffset");
            }
            e.line = 0;
            entries.push(e);
        }
        let manifest = Manifest { entries };
        let text = manifest.to_bytes().map_err(CutError::Io)?;
        let mname = match &self.manifest_path {
            Some(p) => p.file_name().map(|n| n.to_os_string()).unwrap_or_default(),
            None => {
                let mut n = self.parts[0].name.clone();
                n.extend_from_slice(b".manifest");
                OsStr::from_bytes(&n).to_os_string()
            }
        };
        let mpath = tmp.join(&mname);
        let manifest_mode = match &self.manifest_path {
            Some(p) => mode_of(p),
            None => mode_of(&self.parts[0].path),
        };
        write_file(&mpath, &text, manifest_mode).map_err(|e| io("cannot write", &mpath, e))?;
        sum.manifest = mname.to_string_lossy().into_owned();
        Ok(())
    }
}

/// The mode a file written from `source` gets (as `cp` gives it: the source's read / write bits).
fn mode_of(source: &Path) -> u32 {
    crate::output::output_mode(&[source])
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}
