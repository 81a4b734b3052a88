//! Call recording and voicemail: 8 kHz 16-bit WAV files written as the
//! audio arrives (DESIGN §4).
//!
//! Voicemail is mono; a bridged call is stereo with the caller on the left
//! and the agent on the right. The WAV header is rewritten every second of
//! audio ([`FLUSH_EVERY`]), so a crash loses at most that much and leaves a
//! valid file; [`Recorder::finalize`] writes the final header on hang-up.
//! Files are created new (an existing file is never overwritten) and their
//! folder is created if missing.
//!
//! Audio comes as the G.711 codes that crossed the wire (the media
//! engine's recording timelines hold nothing else) and is decoded as it
//! is written. Writes are blocking file I/O: the media engine hands audio
//! to a writer thread, not the 20 ms clock. Each write is one
//! system call for all the audio it is given (the header is rewritten in
//! place, `pwrite`), and nothing is buffered in between: a recording holds
//! no audio of its own, so thousands of them cost little memory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::media::g711;
use crate::media::sdp::Codec;

/// Recordings are 8 kHz, the rate of G.711 (RFC 3551 §4.5.14).
pub const SAMPLE_RATE: u32 = 8000;

/// Sample frames (per channel) between header rewrites: one second.
pub const FLUSH_EVERY: u64 = SAMPLE_RATE as u64;

/// Size of the header of a 16-bit PCM file (one or two channels).
const HEADER_BYTES: u64 = 44;

/// The WAV data chunk length is 32 bits; stop well before it wraps (about
/// 37 hours of stereo).
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - 1024;

/// Channel layout of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One channel: voicemail.
    Mono,
    /// Two channels: caller left, agent right.
    Stereo,
}

impl Layout {
    fn channels(self) -> u16 {
        match self {
            Layout::Mono => 1,
            Layout::Stereo => 2,
        }
    }
}

/// Why a recording could not be created or written.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("recording {}: file already exists", path.display())]
    Exists { path: PathBuf },
    #[error("recording file name {name:?} is not a plain file name")]
    BadName { name: String },
    #[error("recording folder {}: cannot create: {source}", dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("recording {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("recording {}: {layout:?} recording written as {wrote:?}", path.display())]
    WrongLayout {
        path: PathBuf,
        layout: Layout,
        wrote: Layout,
    },
    #[error("recording {}: reached the WAV size limit", path.display())]
    Full { path: PathBuf },
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    pub path: PathBuf,
    /// Length of the audio.
    pub duration: Duration,
    /// Size of the file, header included.
    pub bytes: u64,
}

/// A WAV file being written, one call's worth of audio: 16-bit PCM
/// (`WAVE_FORMAT_PCM`), a 44-byte header and the samples, interleaved.
pub struct Recorder {
    path: PathBuf,
    layout: Layout,
    file: File,
    /// Sample frames (per channel) written.
    frames: u64,
    /// Sample frames written since the header was last rewritten.
    since_flush: u64,
    /// The header matches the audio written (it is rewritten on drop
    /// otherwise).
    header_current: bool,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates `path` (never overwriting it) and its folder if missing.
    pub fn create(path: &Path, layout: Layout) -> Result<Recorder, RecorderError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| RecorderError::CreateDir {
                dir: dir.to_owned(),
                source,
            })?;
        }
        let file = File::create_new(path).map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => RecorderError::Exists {
                path: path.to_owned(),
            },
            _ => RecorderError::Io {
                path: path.to_owned(),
                source,
            },
        })?;
        let mut rec = Recorder {
            path: path.to_owned(),
            layout,
            file,
            frames: 0,
            since_flush: 0,
            header_current: false,
        };
        // A valid, empty WAV file from the start.
        let header = rec.header();
        rec.file
            .write_all(&header)
            .map_err(|source| rec.io_error(source))?;
        rec.header_current = true;
        Ok(rec)
    }

    /// Creates `file_name` inside `dir`; the name must be one plain path
    /// component (no folders, `..` or absolute paths).
    pub fn create_in(
        dir: &Path,
        file_name: &str,
        layout: Layout,
    ) -> Result<Recorder, RecorderError> {
        let mut parts = Path::new(file_name).components();
        match (parts.next(), parts.next()) {
            (Some(Component::Normal(_)), None) if !file_name.contains(['\\', '\0']) => {
                Recorder::create(&dir.join(file_name), layout)
            }
            _ => Err(RecorderError::BadName {
                name: file_name.to_owned(),
            }),
        }
    }

    /// Appends one stretch of audio given as G.711 codes of `codec` (as
    /// it crossed the wire), decoded here: `left` alone for mono
    /// (voicemail); `left` (caller) and `right` (agent) for stereo, the
    /// shorter side padded with silence.
    pub fn write(&mut self, codec: Codec, left: &[u8], right: &[u8]) -> Result<(), RecorderError> {
        // Each codec's decoder is its own instance of `write_decoded`, so
        // the table lookup is inlined in the loop.
        match codec {
            Codec::Pcmu => self.write_decoded(g711::ulaw_decode, left, right),
            Codec::Pcma => self.write_decoded(g711::alaw_decode, left, right),
        }
    }

    fn write_decoded(
        &mut self,
        decode: impl Fn(u8) -> i16 + Copy,
        left: &[u8],
        right: &[u8],
    ) -> Result<(), RecorderError> {
        match self.layout {
            Layout::Mono if !right.is_empty() => Err(self.wrong_layout(Layout::Stereo)),
            Layout::Mono => {
                self.reserve(left.len() as u64)?;
                let mut bytes = vec![0u8; 2 * left.len()];
                for (out, &c) in bytes.chunks_exact_mut(2).zip(left) {
                    out.copy_from_slice(&decode(c).to_le_bytes());
                }
                self.append(&bytes, left.len() as u64)
            }
            Layout::Stereo => {
                let frames = left.len().max(right.len());
                self.reserve(frames as u64)?;
                let mut bytes = vec![0u8; 4 * frames];
                let sample = |codes: &[u8], i: usize| codes.get(i).map_or(0, |&c| decode(c));
                for (i, out) in bytes.chunks_exact_mut(4).enumerate() {
                    out[..2].copy_from_slice(&sample(left, i).to_le_bytes());
                    out[2..].copy_from_slice(&sample(right, i).to_le_bytes());
                }
                self.append(&bytes, frames as u64)
            }
        }
    }

    /// Rewrites the header so the file is valid up to here.
    pub fn flush(&mut self) -> Result<(), RecorderError> {
        self.since_flush = 0;
        let header = self.header();
        self.file
            .write_all_at(&header, 0)
            .map_err(|source| self.io_error(source))?;
        self.header_current = true;
        Ok(())
    }

    /// Writes the final header and closes the file.
    pub fn finalize(mut self) -> Result<RecordingInfo, RecorderError> {
        self.flush()?;
        Ok(RecordingInfo {
            path: self.path.clone(),
            duration: self.duration(),
            bytes: HEADER_BYTES + self.data_bytes(),
        })
    }

    /// Length of the audio written so far.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.frames * 1_000_000 / u64::from(SAMPLE_RATE))
    }

    /// Where the recording is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The channel layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    fn wrong_layout(&self, wrote: Layout) -> RecorderError {
        RecorderError::WrongLayout {
            path: self.path.clone(),
            layout: self.layout,
            wrote,
        }
    }

    /// Refuses a write that would take the data chunk past its 32-bit size.
    fn reserve(&self, frames: u64) -> Result<(), RecorderError> {
        let per_frame = 2 * u64::from(self.layout.channels());
        if (self.frames + frames) * per_frame > MAX_DATA_BYTES - HEADER_BYTES {
            return Err(RecorderError::Full {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Appends `frames` sample frames (`bytes`, interleaved) and rewrites
    /// the header every [`FLUSH_EVERY`] frames.
    fn append(&mut self, bytes: &[u8], frames: u64) -> Result<(), RecorderError> {
        if frames == 0 {
            return Ok(());
        }
        self.file
            .write_all(bytes)
            .map_err(|source| self.io_error(source))?;
        self.header_current = false;
        self.frames += frames;
        self.since_flush += frames;
        if self.since_flush >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    fn data_bytes(&self) -> u64 {
        self.frames * 2 * u64::from(self.layout.channels())
    }

    /// The 44-byte header of a 16-bit PCM file holding what was written
    /// (RIFF chunk, `fmt ` chunk, `data` chunk header).
    fn header(&self) -> [u8; HEADER_BYTES as usize] {
        let channels = self.layout.channels();
        let block_align = 2 * channels;
        let data = self.data_bytes() as u32;
        let mut h = [0u8; HEADER_BYTES as usize];
        let fields: [&[u8]; 13] = [
            b"RIFF",
            &(data + HEADER_BYTES as u32 - 8).to_le_bytes(),
            b"WAVE",
            b"fmt ",
            &16u32.to_le_bytes(),
            // WAVE_FORMAT_PCM
            &1u16.to_le_bytes(),
            &channels.to_le_bytes(),
            &SAMPLE_RATE.to_le_bytes(),
            &(SAMPLE_RATE * u32::from(block_align)).to_le_bytes(),
            &block_align.to_le_bytes(),
            &16u16.to_le_bytes(),
            b"data",
            &data.to_le_bytes(),
        ];
        let mut at = 0;
        for f in fields {
            h[at..at + f.len()].copy_from_slice(f);
            at += f.len();
        }
        h
    }

    fn io_error(&self, source: io::Error) -> RecorderError {
        RecorderError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl Drop for Recorder {
    /// A recording dropped without [`Recorder::finalize`] (a failed write,
    /// a worker stopping) still gets a header for all it holds.
    fn drop(&mut self) {
        if !self.header_current {
            let header = self.header();
            let _ = self.file.write_all_at(&header, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use hound::{WavReader, WavSpec};

    use super::*;
    use crate::media::prompt::test_dir;

    fn read_all(path: &Path) -> (WavSpec, Vec<i16>) {
        let mut r = WavReader::open(path).expect("hound reads the recording");
        let spec = r.spec();
        let samples = r
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("samples");
        (spec, samples)
    }

    #[test]
    fn mono_recording_decodes_every_code_exactly() {
        let dir = test_dir("rec-mono").join("voicemail");
        let path = dir.join("vm.wav");
        let mut rec = Recorder::create(&path, Layout::Mono).expect("create");
        let codes: Vec<u8> = (0..4000).map(|i| (i * 37 % 256) as u8).collect();
        for chunk in codes.chunks(160) {
            rec.write(Codec::Pcmu, chunk, &[]).expect("write");
        }
        assert_eq!(rec.duration(), Duration::from_millis(500));
        let info = rec.finalize().expect("finalize");
        assert_eq!(info.path, path);
        assert_eq!(info.duration, Duration::from_millis(500));
        assert_eq!(info.bytes, 44 + 8000);
        let (spec, samples) = read_all(&path);
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 8000, 16)
        );
        let want: Vec<i16> = codes.iter().map(|&c| g711::ulaw_decode(c)).collect();
        assert_eq!(samples, want);
    }

    #[test]
    fn stereo_puts_caller_left_agent_right_and_pads_the_shorter() {
        let dir = test_dir("rec-stereo");
        let path = dir.join("call.wav");
        let mut rec = Recorder::create(&path, Layout::Stereo).expect("create");
        let a = |c: u8| g711::alaw_decode(c);
        rec.write(Codec::Pcma, &[1, 2, 3], &[0x81, 0x82, 0x83])
            .expect("write");
        rec.write(Codec::Pcma, &[4, 5], &[])
            .expect("agent frame lost");
        rec.write(Codec::Pcma, &[], &[0x86])
            .expect("caller frame lost");
        let info = rec.finalize().expect("finalize");
        assert_eq!(info.duration, Duration::from_micros(6 * 125));
        let (spec, samples) = read_all(&path);
        assert_eq!(spec.channels, 2);
        assert_eq!(
            samples,
            [
                a(1),
                a(0x81),
                a(2),
                a(0x82),
                a(3),
                a(0x83),
                a(4),
                0,
                a(5),
                0,
                0,
                a(0x86)
            ]
        );
        assert_eq!(info.bytes, 44 + 24);
    }

    #[test]
    fn header_is_valid_after_a_flush_without_finalize() {
        let dir = test_dir("rec-crash");
        let path = dir.join("crash.wav");
        let mut rec = Recorder::create(&path, Layout::Stereo).expect("create");
        let frame = [0x90u8; 160];
        // 1.5 s: the header was last rewritten at 1 s.
        for _ in 0..75 {
            rec.write(Codec::Pcmu, &frame, &frame).expect("write");
        }
        let (_, samples) = read_all(&path);
        assert_eq!(samples.len(), 2 * 8000);
        assert!(samples.iter().all(|&s| s == g711::ulaw_decode(0x90)));
        rec.flush().expect("flush");
        let (_, samples) = read_all(&path);
        assert_eq!(samples.len(), 2 * 12_000);
        // A crash now: the writer is never finalized nor dropped.
        std::mem::forget(rec);
        let (_, samples) = read_all(&path);
        assert_eq!(samples.len(), 2 * 12_000);
    }

    /// A recording dropped without being finalized (its writer thread
    /// gave up on it) gets a header for everything it wrote.
    #[test]
    fn a_recording_dropped_unfinished_keeps_all_it_wrote() {
        let path = test_dir("rec-drop").join("dropped.wav");
        let mut rec = Recorder::create(&path, Layout::Mono).expect("create");
        rec.write(Codec::Pcmu, &[5; 1200], &[]).expect("write");
        drop(rec);
        let (spec, samples) = read_all(&path);
        assert_eq!(spec.channels, 1);
        assert_eq!(samples, vec![g711::ulaw_decode(5); 1200]);
    }

    #[test]
    fn never_overwrites_and_checks_names_and_layout() {
        let dir = test_dir("rec-exists");
        let path = dir.join("a.wav");
        Recorder::create(&path, Layout::Mono)
            .expect("create")
            .finalize()
            .expect("finalize");
        assert!(matches!(
            Recorder::create(&path, Layout::Mono),
            Err(RecorderError::Exists { .. })
        ));
        assert_eq!(read_all(&path).1.len(), 0, "the first file is intact");

        for bad in ["../x.wav", "/tmp/x.wav", "a/b.wav", "", ".", "..", "a\\b"] {
            assert!(
                matches!(
                    Recorder::create_in(&dir, bad, Layout::Mono),
                    Err(RecorderError::BadName { .. })
                ),
                "{bad:?}"
            );
        }
        let mut rec = Recorder::create_in(&dir, "b.wav", Layout::Mono).expect("create_in");
        assert_eq!(rec.path(), dir.join("b.wav"));
        assert!(matches!(
            rec.write(Codec::Pcmu, &[1], &[2]),
            Err(RecorderError::WrongLayout { .. })
        ));
        rec.write(Codec::Pcmu, &[7], &[]).expect("write");
        assert_eq!(rec.finalize().expect("finalize").bytes, 46);

        // A file where the folder should be.
        std::fs::write(dir.join("file"), b"x").expect("write");
        assert!(matches!(
            Recorder::create(&dir.join("file").join("c.wav"), Layout::Mono),
            Err(RecorderError::CreateDir { .. })
        ));
    }
}
