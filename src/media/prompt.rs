//! Prompts: sound files converted once to 8 kHz and pre-encoded into 20 ms
//! G.711 frames (DESIGN §4).
//!
//! Any WAV file hound reads (8–48 kHz, mono or stereo, 8/16/24/32-bit
//! integer or 32-bit float) is mixed down to mono, resampled to 8 kHz with a
//! windowed-sinc low-pass ([`resample`]), rounded to 16-bit and encoded into
//! 160-sample frames for both PCMU and PCMA. A [`Prompt`] is built once and
//! shared by every call that plays it through an `Arc`; playing it only hands
//! out references to frames that already exist ([`PromptCursor`]), so the
//! media clock never decodes, resamples or allocates.
//!
//! [`PromptCache`] loads every sound a flow set names, all errors at once,
//! and is cheap to clone and swap on hot reload.

mod cache;
mod load;
mod resample;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use cache::{PromptCache, PromptCursor, check_name};
pub use load::MAX_DURATION;
pub use resample::Resampler;

use crate::media::g711;
use crate::media::sdp::Codec;

/// The sample rate of every prompt after loading, and of G.711 (RFC 3551 §4.5.14).
pub const SAMPLE_RATE: u32 = 8000;

/// Samples in one 20 ms frame at 8 kHz: one RTP packet's payload.
pub const FRAME_SAMPLES: usize = 160;

/// One pre-encoded 20 ms G.711 frame.
pub type Frame = [u8; FRAME_SAMPLES];

/// Why a prompt could not be loaded. Every variant names the file (or the
/// name from the flow), so `switchboard check` and hot reload can report it.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("sound {name:?}: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("sound file {}: not found", path.display())]
    NotFound { path: PathBuf },
    #[error("sound file {}: cannot read: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sound file {}: not a readable WAV file: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    #[error("sound file {}: unsupported format: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
    #[error(
        "sound file {}: {:.1} s long, more than the {} s allowed",
        path.display(),
        length.as_secs_f64(),
        max.as_secs()
    )]
    TooLong {
        path: PathBuf,
        length: Duration,
        max: Duration,
    },
    #[error("sound file {}: holds no audio", path.display())]
    Empty { path: PathBuf },
}

/// A sound ready to play: 8 kHz mono samples and the same audio as 20 ms
/// PCMU and PCMA frames (the last frame padded with silence). Frames are
/// shared, never copied per call.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// The name the flow uses (relative to the sounds folder).
    pub name: Arc<str>,
    /// Length of the audio, before padding to whole frames.
    pub duration: Duration,
    /// The 8 kHz 16-bit samples, for in-band mixing and recording.
    pub pcm: Arc<[i16]>,
    /// G.711 μ-law frames (payload type 0).
    pub pcmu: Arc<[Frame]>,
    /// G.711 A-law frames (payload type 8).
    pub pcma: Arc<[Frame]>,
}

impl Prompt {
    /// Loads and converts a WAV file (see the module docs); `name` is what
    /// the flow calls it. Blocking file I/O and a few milliseconds of CPU
    /// per second of audio: run it off the media workers.
    pub fn load(path: &std::path::Path, name: &str) -> Result<Prompt, PromptError> {
        load::load(path, name)
    }

    /// A prompt from 8 kHz samples made in code (a beep, a tone).
    pub fn from_pcm(name: &str, pcm: Vec<i16>) -> Prompt {
        let frames = pcm.len().div_ceil(FRAME_SAMPLES);
        let mut pcmu = Vec::with_capacity(frames);
        let mut pcma = Vec::with_capacity(frames);
        for chunk in pcm.chunks(FRAME_SAMPLES) {
            let mut linear = [0i16; FRAME_SAMPLES];
            for (l, &s) in linear.iter_mut().zip(chunk) {
                *l = s;
            }
            let mut u = [0u8; FRAME_SAMPLES];
            let mut a = [0u8; FRAME_SAMPLES];
            g711::encode_ulaw(&linear, &mut u);
            g711::encode_alaw(&linear, &mut a);
            pcmu.push(u);
            pcma.push(a);
        }
        let duration = Duration::from_secs_f64(pcm.len() as f64 / f64::from(SAMPLE_RATE));
        Prompt {
            name: Arc::from(name),
            duration,
            pcm: Arc::from(pcm),
            pcmu: Arc::from(pcmu),
            pcma: Arc::from(pcma),
        }
    }

    /// The frames to send for `codec`.
    pub fn frames(&self, codec: Codec) -> &[Frame] {
        match codec {
            Codec::Pcmu => &self.pcmu,
            Codec::Pcma => &self.pcma,
        }
    }

    /// Number of 20 ms frames (the same for both codecs).
    pub fn frame_count(&self) -> usize {
        self.pcmu.len()
    }
}

/// A fresh, empty folder under the system temp dir for one test.
#[cfg(test)]
pub(crate) fn test_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sb-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pcm_pads_last_frame_with_silence() {
        let prompt = Prompt::from_pcm("beep", vec![1000; 170]);
        assert_eq!(prompt.frame_count(), 2);
        assert_eq!(prompt.pcma.len(), 2);
        assert_eq!(prompt.duration, Duration::from_micros(21_250));
        let mut silence_u = [0u8; 1];
        let mut silence_a = [0u8; 1];
        g711::encode_ulaw(&[0], &mut silence_u);
        g711::encode_alaw(&[0], &mut silence_a);
        assert!(prompt.pcmu[1][10..].iter().all(|&b| b == silence_u[0]));
        assert!(prompt.pcma[1][10..].iter().all(|&b| b == silence_a[0]));
        assert_ne!(prompt.pcmu[1][9], silence_u[0]);
    }

    #[test]
    fn frames_pick_the_codec() {
        let prompt = Prompt::from_pcm("x", vec![0; 320]);
        assert!(std::ptr::eq(prompt.frames(Codec::Pcmu), &prompt.pcmu[..]));
        assert!(std::ptr::eq(prompt.frames(Codec::Pcma), &prompt.pcma[..]));
    }
}
