//! Room on the database's disk (SQLite): a warning before it runs out, while Herald can still
//! store events, rather than only the alarm once writes fail (`write_alarm`).
//!
//! The disk is the filesystem holding the database file, its WAL and its shared-memory file.
//! It is low when less than `LowMark::floor` is free (1 GiB unless `HERALD_DISK_LOW_MIB` says
//! otherwise), or 10% of a disk too small for that to mean much; it counts as low until the free
//! space is a fifth above the mark again, so a disk hovering at the mark does not flap. While
//! it is low, `/healthz` adds a warning (and stays 200), `/metrics` shows the figures always,
//! every signed-in console page shows a notice, and the alert recipients of every program with
//! e-mail on get one message when it goes low and one when there is room again. PostgreSQL keeps
//! its files on its own server, out of Herald's sight: nothing is watched there.

use super::mail::{self, Mail};
use super::Engine;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The free space below which the disk is low, unless `HERALD_DISK_LOW_MIB` sets another.
pub const DEFAULT_FLOOR: u64 = 1024 * 1024 * 1024;

/// How much room the filesystem holding a path has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DiskSpace {
    /// Bytes an unprivileged writer can still use.
    pub free: u64,
    /// The filesystem's size in bytes.
    pub total: u64,
}

impl DiskSpace {
    /// The filesystem holding `file` (its directory, where SQLite keeps the WAL beside it).
    pub fn of(file: &Path) -> Option<Self> {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let st = rustix::fs::statvfs(dir).ok()?;
        let unit = st.f_frsize.max(1);
        Some(Self {
            free: st.f_bavail.saturating_mul(unit),
            total: st.f_blocks.saturating_mul(unit),
        })
    }

    /// Free space as a share of the disk, in percent.
    pub fn free_percent(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.free as f64 * 100.0 / self.total as f64
        }
    }

    /// "812 MiB free of 20 GiB (4.0%)".
    pub fn describe(&self) -> String {
        format!(
            "{} free of {} ({:.1}%)",
            bytes(self.free),
            bytes(self.total),
            self.free_percent()
        )
    }
}

/// When a disk counts as low.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowMark {
    /// Free space below this is low on any disk large enough (10 times this or more).
    pub floor: u64,
}

impl Default for LowMark {
    fn default() -> Self {
        Self {
            floor: DEFAULT_FLOOR,
        }
    }
}

impl LowMark {
    /// The free space below which this disk is low: the floor, or a tenth of a smaller disk.
    pub fn mark(&self, space: &DiskSpace) -> u64 {
        self.floor.min(space.total / 10)
    }

    /// Whether the disk is low now, given whether it was at the last look (it stays low until
    /// the free space is a fifth above the mark).
    pub fn is_low(&self, space: &DiskSpace, was_low: bool) -> bool {
        let mark = self.mark(space);
        if was_low {
            space.free < mark.saturating_add(mark / 5)
        } else {
            space.free < mark
        }
    }
}

/// A size in words: "812 MiB", "1.5 GiB".
pub fn bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let mib = n as f64 / MIB;
    if mib >= 1024.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else if mib >= 10.0 {
        format!("{mib:.0} MiB")
    } else {
        format!("{mib:.1} MiB")
    }
}

/// The disk watch an engine keeps.
pub(super) struct DiskWatch {
    file: Option<PathBuf>,
    mark: LowMark,
    /// The low run announced by e-mail (with the space then), until its end is announced.
    announced: Mutex<Option<DiskSpace>>,
    /// Whether the last look found the disk low (the hysteresis of `LowMark::is_low`).
    low: Mutex<bool>,
}

impl DiskWatch {
    pub(super) fn new(file: Option<PathBuf>, mark: LowMark) -> Self {
        Self {
            file,
            mark,
            announced: Mutex::new(None),
            low: Mutex::new(false),
        }
    }
}

/// What one look at the disk sent by e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskAlarmKind {
    /// The disk went low.
    Low,
    /// There is room again.
    Room,
}

/// What a look at the disk sent, and to how many sets of recipients (`failed`: not sent; logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskAlarmSent {
    pub kind: DiskAlarmKind,
    pub sent: usize,
    pub failed: usize,
}

/// The disk as a look finds it: its space and whether that is low.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskReading {
    pub space: DiskSpace,
    pub low: bool,
    /// The free space below which it counts as low.
    pub mark: u64,
}

impl Engine {
    /// The database's disk now (SQLite only; `None` on PostgreSQL or when it cannot be read).
    pub fn disk(&self) -> Option<DiskReading> {
        let watch = &self.inner.disk;
        let space = DiskSpace::of(watch.file.as_deref()?)?;
        let mut low = watch.low.lock().expect("disk watch");
        *low = watch.mark.is_low(&space, *low);
        Some(DiskReading {
            space,
            low: *low,
            mark: watch.mark.mark(&space),
        })
    }

    /// The warning to show while the database's disk is low, in words an operator can act on.
    pub fn disk_warning(&self) -> Option<String> {
        let reading = self.disk().filter(|r| r.low)?;
        Some(format!(
            "The database's disk is nearly full: {}. Herald refuses new events once it is full; \
             free some space or move the database to a larger disk.",
            reading.space.describe()
        ))
    }

    /// One look at the disk for the alarm (the alert task takes one every few seconds): e-mails
    /// once when the disk goes low and once when there is room again. `None` when nothing was
    /// due.
    pub async fn watch_disk(&self) -> Option<DiskAlarmSent> {
        let reading = self.disk()?;
        let (kind, message) = {
            let mut announced = self.inner.disk.announced.lock().expect("disk watch");
            match (reading.low, announced.as_ref()) {
                (true, None) => {
                    *announced = Some(reading.space);
                    (DiskAlarmKind::Low, low_mail(&reading))
                }
                (false, Some(then)) => {
                    let message = room_mail(then, &reading);
                    *announced = None;
                    (DiskAlarmKind::Room, message)
                }
                _ => return None,
            }
        };
        let (sent, failed) = self.e_mail_alarm(&message).await;
        match kind {
            DiskAlarmKind::Low => tracing::warn!(
                free = reading.space.free,
                total = reading.space.total,
                "the database's disk is nearly full"
            ),
            DiskAlarmKind::Room => tracing::info!(
                free = reading.space.free,
                "the database's disk has room again"
            ),
        }
        Some(DiskAlarmSent { kind, sent, failed })
    }

    /// Sends `message` to the alert recipients of every program with e-mail on (one message per
    /// distinct server, sender and recipients): how many were sent, how many failed.
    pub(super) async fn e_mail_alarm(&self, message: &Mail) -> (usize, usize) {
        let (mut sent, mut failed) = (0, 0);
        for stored in self.alarm_recipients().await {
            let result = match stored.password(&self.inner.sealer) {
                Ok(password) => mail::send(&stored.settings, password.as_deref(), message).await,
                Err(e) => Err(format!("the SMTP password could not be opened: {e}")),
            };
            match result {
                Ok(()) => sent += 1,
                Err(why) => {
                    tracing::warn!(error = %why, subject = %message.subject, "alarm e-mail not sent");
                    failed += 1;
                }
            }
        }
        (sent, failed)
    }
}

fn low_mail(reading: &DiskReading) -> Mail {
    Mail {
        subject: format!(
            "[Herald] The database's disk is nearly full: {} free",
            bytes(reading.space.free)
        ),
        body: format!(
            "The disk holding Herald's database has {}; Herald warns below {}.\n\n\
             Herald stores events as usual for now. Once the disk is full it must refuse new \
             events (503 with Retry-After; nothing accepted before is lost) until space returns. \
             Free some space, lower HERALD_RETENTION_DAYS, or move the database to a larger \
             disk. Another message will say when there is room again.\n\n{}\n",
            reading.space.describe(),
            bytes(reading.mark),
            super::write_alarm::reporter()
        ),
    }
}

fn room_mail(then: &DiskSpace, reading: &DiskReading) -> Mail {
    Mail {
        subject: format!(
            "[Herald] Room on the database's disk again: {} free",
            bytes(reading.space.free)
        ),
        body: format!(
            "The disk holding Herald's database has {} now (it had {} when it was reported \
             nearly full).\n\n{}\n",
            reading.space.describe(),
            then.describe(),
            super::write_alarm::reporter()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;

    #[test]
    fn low_below_the_floor_or_a_tenth_of_a_small_disk_until_a_fifth_above_it() {
        let mark = LowMark::default();
        let disk = |free, total| DiskSpace { free, total };
        // A large disk: 1 GiB is the mark, whatever its share.
        assert!(!mark.is_low(&disk(2 * GIB, 500 * GIB), false));
        assert!(mark.is_low(&disk(GIB - 1, 500 * GIB), false));
        // A small disk: a tenth of it.
        assert_eq!(mark.mark(&disk(0, 4 * GIB)), 4 * GIB / 10);
        assert!(!mark.is_low(&disk(500 * MIB, 4 * GIB), false));
        assert!(mark.is_low(&disk(400 * MIB, 4 * GIB), false));
        // Once low, it stays low until a fifth above the mark.
        assert!(mark.is_low(&disk(GIB + 100 * MIB, 500 * GIB), true));
        assert!(!mark.is_low(&disk(GIB + GIB / 5, 500 * GIB), true));
    }

    #[test]
    fn sizes_read_as_words() {
        assert_eq!(bytes(812 * MIB), "812 MiB");
        assert_eq!(bytes(3 * MIB / 2), "1.5 MiB");
        assert_eq!(bytes(3 * GIB / 2), "1.5 GiB");
        let space = DiskSpace {
            free: 812 * MIB,
            total: 20 * GIB,
        };
        assert_eq!(space.describe(), "812 MiB free of 20.0 GiB (4.0%)");
    }

    #[test]
    fn the_filesystem_of_a_file_in_this_directory_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let space = DiskSpace::of(&dir.path().join("herald.db")).expect("statvfs");
        assert!(space.total > 0 && space.free <= space.total, "{space:?}");
    }
}
