//! G.711 (ITU-T G.711, 11/1988): μ-law (PCMU) and A-law (PCMA) companding
//! between 16-bit linear PCM and 8-bit codes (DESIGN §4).
//!
//! Decoding is one lookup in a 256-entry table built at compile time.
//! Encoding is bit math: the segment and step are read off the f32
//! exponent and mantissa of the biased magnitude, which keeps the slice
//! loops vectorized (`benches/g711.rs`: faster than a 16K-entry table for
//! μ-law, on a par with an 8K-entry one for A-law, without the cache cost).
//! μ-law↔A-law transcoding for the bridge is one lookup in a 256-entry
//! table.
//!
//! Linear samples are 16-bit; G.711 itself works on 14-bit (μ-law) and
//! 13-bit (A-law) samples, so the low 2 or 3 bits are dropped on encode and
//! decoded values are those of the standard's tables scaled by 4 and 8.
//! Negative samples are folded with one's complement (`!x`), as in the
//! ITU-T G.191 reference, so `-1` encodes to the negative zero code.

/// μ-law of a 16-bit sample (G.711 §2, table 2a).
///
/// The magnitude is clipped to 32635, biased by 132 (33 in 14-bit units)
/// so that every segment starts on a power of two; the segment is then the
/// position of the highest set bit and the step the four bits under it.
#[inline]
pub const fn ulaw_encode(sample: i16) -> u8 {
    // Sign: 0x80 for positive and zero, folded so that the code is the
    // complement of sign | segment | quantization step (G.711 §2, note 1).
    let (magnitude, mask) = if sample < 0 {
        (!sample as u16, 0x7F)
    } else {
        (sample as u16, 0xFF)
    };
    let clipped = if magnitude > ULAW_CLIP {
        ULAW_CLIP
    } else {
        magnitude
    };
    let biased = (clipped + ULAW_BIAS) as i32;
    // biased is in 132..=32767 (top bit 7..=14) and exact as an f32, whose
    // exponent field is then 134 + segment and whose four highest mantissa
    // bits are the quantization step: the code is those 12 bits minus
    // 134 << 4. Float conversion keeps the slice loops vectorized.
    let code = ((biased as f32).to_bits() >> 19) - (F32_SEGMENT_0 << 4);
    code as u8 ^ mask
}

/// 16-bit sample of a μ-law code (G.711 §2, table 2a, scaled by 4).
#[inline]
pub const fn ulaw_decode(code: u8) -> i16 {
    ULAW_TO_LINEAR[code as usize]
}

/// A-law of a 16-bit sample (G.711 §2, table 1a).
///
/// Segment 0 and 1 share a step of 16; above them the segment is the
/// position of the highest set bit. Even bits are inverted (XOR 0x55).
#[inline]
pub const fn alaw_encode(sample: i16) -> u8 {
    // Sign bit 1 means positive in A-law (G.711 table 1a).
    let (magnitude, sign) = if sample < 0 {
        (!sample as u16 as u32, 0x00)
    } else {
        (sample as u16 as u32, 0x80)
    };
    // Segment 0 steps by 16 like segment 1; from segment 1 on, the f32
    // exponent and top mantissa bits give segment and step (see ulaw_encode).
    let code = if magnitude < 256 {
        magnitude >> 4
    } else {
        ((magnitude as i32 as f32).to_bits() >> 19) - (F32_SEGMENT_0 << 4)
    };
    (code as u8 | sign) ^ ALAW_XOR
}

/// 16-bit sample of an A-law code (G.711 §2, table 1a, scaled by 8).
#[inline]
pub const fn alaw_decode(code: u8) -> i16 {
    ALAW_TO_LINEAR[code as usize]
}

/// The A-law code for the same sample as a μ-law code (for the bridge
/// between a PCMU and a PCMA leg, DESIGN §4).
#[inline]
pub const fn ulaw_to_alaw(code: u8) -> u8 {
    ULAW_TO_ALAW[code as usize]
}

/// The μ-law code for the same sample as an A-law code.
#[inline]
pub const fn alaw_to_ulaw(code: u8) -> u8 {
    ALAW_TO_ULAW[code as usize]
}

/// Encodes `pcm` to μ-law into `out`; returns how many samples were
/// written (the shorter of the two lengths).
pub fn encode_ulaw(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (code, &sample) in out[..n].iter_mut().zip(&pcm[..n]) {
        *code = ulaw_encode(sample);
    }
    n
}

/// Decodes μ-law `codes` into `out`; returns how many samples were written.
pub fn decode_ulaw(codes: &[u8], out: &mut [i16]) -> usize {
    let n = codes.len().min(out.len());
    for (sample, &code) in out[..n].iter_mut().zip(&codes[..n]) {
        *sample = ULAW_TO_LINEAR[code as usize];
    }
    n
}

/// Encodes `pcm` to A-law into `out`; returns how many samples were
/// written (the shorter of the two lengths).
pub fn encode_alaw(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (code, &sample) in out[..n].iter_mut().zip(&pcm[..n]) {
        *code = alaw_encode(sample);
    }
    n
}

/// Decodes A-law `codes` into `out`; returns how many samples were written.
pub fn decode_alaw(codes: &[u8], out: &mut [i16]) -> usize {
    let n = codes.len().min(out.len());
    for (sample, &code) in out[..n].iter_mut().zip(&codes[..n]) {
        *sample = ALAW_TO_LINEAR[code as usize];
    }
    n
}

/// Rewrites a μ-law payload as A-law in place.
pub fn transcode_ulaw_to_alaw(payload: &mut [u8]) {
    for code in payload {
        *code = ULAW_TO_ALAW[*code as usize];
    }
}

/// Rewrites an A-law payload as μ-law in place.
pub fn transcode_alaw_to_ulaw(payload: &mut [u8]) {
    for code in payload {
        *code = ALAW_TO_ULAW[*code as usize];
    }
}

/// μ-law encoding through a 16K-entry table indexed by the 14-bit sample.
///
/// Gives the same codes as [`ulaw_encode`]; kept for the benchmark that
/// compares the two (and the A-law one below).
#[doc(hidden)]
#[inline]
pub fn ulaw_encode_table(sample: i16) -> u8 {
    ULAW_ENCODE_14[((sample >> 2) as u16 & 0x3FFF) as usize]
}

/// A-law encoding through an 8K-entry table indexed by the 13-bit sample.
#[doc(hidden)]
#[inline]
pub fn alaw_encode_table(sample: i16) -> u8 {
    ALAW_ENCODE_13[((sample >> 3) as u16 & 0x1FFF) as usize]
}

/// μ-law magnitudes above this clip to the largest code.
const ULAW_CLIP: u16 = 32635;
/// μ-law bias: 33 in the standard's 14-bit units.
const ULAW_BIAS: u16 = 132;
/// The f32 exponent field of a value whose top bit is bit 7 (127 + 7).
const F32_SEGMENT_0: u32 = 134;
/// A-law inverts the even bits of every code (G.711 §2, note 2).
const ALAW_XOR: u8 = 0x55;

const fn ulaw_decode_math(code: u8) -> i16 {
    let c = !code;
    let segment = (c >> 4) & 0x07;
    let step = (c & 0x0F) as i32;
    let magnitude = (((step << 3) + ULAW_BIAS as i32) << segment) - ULAW_BIAS as i32;
    if c & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_math(code: u8) -> i16 {
    let c = code ^ ALAW_XOR;
    let segment = (c >> 4) & 0x07;
    let step = (c & 0x0F) as i32;
    let magnitude = if segment == 0 {
        (step << 4) + 8
    } else {
        ((step << 4) + 0x108) << (segment - 1)
    };
    if c & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const ULAW_TO_LINEAR: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_decode_math(i as u8);
        i += 1;
    }
    table
};

const ALAW_TO_LINEAR: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_decode_math(i as u8);
        i += 1;
    }
    table
};

const ULAW_TO_ALAW: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_encode(ULAW_TO_LINEAR[i]);
        i += 1;
    }
    table
};

const ALAW_TO_ULAW: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_encode(ALAW_TO_LINEAR[i]);
        i += 1;
    }
    table
};

static ULAW_ENCODE_14: [u8; 16384] = {
    let mut table = [0u8; 16384];
    let mut i = 0;
    while i < 16384 {
        // Index i is the 14-bit sample; sign-extend it back to 16 bits.
        let sample = ((i as u16) << 2) as i16;
        table[i] = ulaw_encode(sample);
        i += 1;
    }
    table
};

static ALAW_ENCODE_13: [u8; 8192] = {
    let mut table = [0u8; 8192];
    let mut i = 0;
    while i < 8192 {
        let sample = ((i as u16) << 3) as i16;
        table[i] = alaw_encode(sample);
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// μ-law decoded value straight from G.711 table 2a: in 14-bit units
    /// segment `s` step `q` decodes to `(2q + 33) * 2^s - 33`.
    fn ulaw_reference(code: u8) -> i16 {
        let negative = code & 0x80 == 0;
        let s = i32::from((!code >> 4) & 0x07);
        let q = i32::from(!code & 0x0F);
        let y14 = (2 * q + 33) * (1 << s) - 33;
        let y = 4 * y14;
        (if negative { -y } else { y }) as i16
    }

    /// A-law decoded value from G.711 table 1a: in 12-bit magnitude units
    /// segment 0 decodes to `2q + 1` and segment `s > 0` to
    /// `(2q + 33) * 2^(s-1)`.
    fn alaw_reference(code: u8) -> i16 {
        let raw = code ^ 0b0101_0101;
        let positive = raw & 0x80 != 0;
        let s = i32::from((raw >> 4) & 0x07);
        let q = i32::from(raw & 0x0F);
        let y12 = if s == 0 {
            2 * q + 1
        } else {
            (2 * q + 33) * (1 << (s - 1))
        };
        let y = 8 * y12;
        (if positive { y } else { -y }) as i16
    }

    #[test]
    fn ulaw_decode_table_matches_g711_table_2a() {
        for code in 0..=255u8 {
            assert_eq!(ulaw_decode(code), ulaw_reference(code), "code {code:#04x}");
        }
    }

    #[test]
    fn alaw_decode_table_matches_g711_table_1a() {
        for code in 0..=255u8 {
            assert_eq!(alaw_decode(code), alaw_reference(code), "code {code:#04x}");
        }
    }

    #[test]
    fn known_points_g711() {
        // μ-law: 0xFF and 0x7F are the two zeros; 0x80/0x00 the extremes.
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0xFE), 8);
        assert_eq!(ulaw_decode(0x7E), -8);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        // A-law: 0xD5/0x55 are the smallest magnitudes, 0xAA/0x2A the largest.
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn alaw_even_bits_are_inverted_g711_note_2() {
        // Before the inversion the positive zero-step code is 0x80 and the
        // negative one 0x00; on the line they are 0x80^0x55 and 0x00^0x55.
        assert_eq!(alaw_encode(1), 0x80 ^ 0x55);
        assert_eq!(alaw_encode(-1), 0x55);
        for code in 0..=255u8 {
            assert_eq!(alaw_decode(code), alaw_reference(code ^ 0x55 ^ 0x55));
            // Undoing the inversion gives sign-segment-step in natural order.
            let raw = code ^ 0x55;
            assert_eq!(alaw_decode(code) > 0, raw & 0x80 != 0);
        }
    }

    #[test]
    fn round_trip_every_code_g711() {
        for code in 0..=255u8 {
            let back = ulaw_encode(ulaw_decode(code));
            if code == 0x7F {
                // Negative zero decodes to 0, which encodes as positive zero.
                assert_eq!(back, 0xFF);
            } else {
                assert_eq!(back, code, "μ-law code {code:#04x}");
            }
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn decoded_values_are_monotonic_in_code_order() {
        // Positive μ-law codes 0xFF down to 0x80 grow, negative codes 0x7F
        // down to 0x00 shrink; A-law after undoing the XOR likewise.
        let mut previous = i16::MIN;
        for code in (0x00..=0x7Fu8).chain((0x80..=0xFFu8).rev()) {
            let value = ulaw_decode(code);
            assert!(value >= previous, "μ-law {code:#04x}");
            previous = value;
        }
        let mut previous = i16::MIN;
        for raw in (0x00..=0x7Fu8).rev().chain(0x80..=0xFFu8) {
            let value = alaw_decode(raw ^ 0x55);
            assert!(value > previous, "A-law raw {raw:#04x}");
            previous = value;
        }
    }

    #[test]
    fn encoding_is_monotonic_and_within_half_a_step() {
        let mut previous_u = i16::MIN;
        let mut previous_a = i16::MIN;
        for sample in i16::MIN..=i16::MAX {
            let u = ulaw_decode(ulaw_encode(sample));
            let a = alaw_decode(alaw_encode(sample));
            assert!(u >= previous_u && a >= previous_a, "sample {sample}");
            previous_u = u;
            previous_a = a;
            // The decoded value is the middle of the decision interval,
            // which for negatives is taken on the one's complement.
            let folded = if sample < 0 { !sample } else { sample };
            let half = |value: i16| {
                if sample < 0 {
                    (!value).abs_diff(folded)
                } else {
                    value.abs_diff(folded)
                }
            };
            let u_segment = u32::from((!ulaw_encode(sample) >> 4) & 7);
            if folded <= 32635 {
                assert!(half(u) <= 4 << u_segment, "μ-law {sample} -> {u}");
            }
            let a_segment = u32::from(((alaw_encode(sample) ^ 0x55) >> 4) & 7);
            let a_half = if a_segment == 0 { 8 } else { 4 << a_segment };
            assert!(half(a) <= a_half + 1, "A-law {sample} -> {a}");
        }
    }

    #[test]
    fn segment_edges_match_g711_decision_values() {
        // G.711 table 2a: μ-law segments end at 31, 95, 223, 479, 991,
        // 2015, 4063 in 14-bit units; table 1a: A-law segments end at
        // 32, 64, ..., 2048 in 12-bit units.
        let ulaw_segment = |x: i16| (!ulaw_encode(x) >> 4) & 7;
        for (s, edge14) in [31i16, 95, 223, 479, 991, 2015, 4063]
            .into_iter()
            .enumerate()
        {
            let edge = edge14 * 4;
            assert_eq!(ulaw_segment(edge - 1), s as u8);
            assert_eq!(ulaw_segment(edge), s as u8 + 1);
            assert_eq!(ulaw_segment(!(edge - 1)), s as u8);
            assert_eq!(ulaw_segment(!edge), s as u8 + 1);
        }
        let alaw_segment = |x: i16| ((alaw_encode(x) ^ 0x55) >> 4) & 7;
        for s in 1..8u8 {
            let edge = 8 * (16i16 << s);
            assert_eq!(alaw_segment(edge - 1), s - 1);
            assert_eq!(alaw_segment(edge), s);
            assert_eq!(alaw_segment(!(edge - 1)), s - 1);
            assert_eq!(alaw_segment(!edge), s);
        }
    }

    #[test]
    fn table_encoder_matches_bit_math() {
        for sample in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode_table(sample), ulaw_encode(sample), "{sample}");
            assert_eq!(alaw_encode_table(sample), alaw_encode(sample), "{sample}");
        }
    }

    #[test]
    fn transcoding_keeps_the_sample_g711() {
        for code in 0..=255u8 {
            let a = ulaw_to_alaw(code);
            let u = alaw_to_ulaw(code);
            assert_eq!(a, alaw_encode(ulaw_decode(code)));
            assert_eq!(u, ulaw_encode(alaw_decode(code)));
            // The sign survives, and the value moves by at most one A-law step.
            let (lin, via) = (ulaw_decode(code), alaw_decode(a));
            assert!(lin == 0 || (lin > 0) == (via > 0), "{code:#04x}");
            assert!(lin.abs_diff(via) <= 1024, "{code:#04x}: {lin} vs {via}");
        }
        // A -> μ -> A lands on the same code or a neighbour of it.
        for code in 0..=255u8 {
            let back = ulaw_to_alaw(alaw_to_ulaw(code));
            let rank = |c: u8| {
                let raw = c ^ 0x55;
                let magnitude = i32::from(raw & 0x7F);
                if raw & 0x80 != 0 {
                    magnitude
                } else {
                    -magnitude - 1
                }
            };
            assert!(
                (rank(back) - rank(code)).abs() <= 1,
                "{code:#04x} -> {back:#04x}"
            );
        }
    }

    #[test]
    fn slice_helpers_use_the_shorter_length() {
        let pcm = [0i16, 1000, -1000, i16::MAX, i16::MIN];
        let mut codes = [0u8; 4];
        assert_eq!(encode_ulaw(&pcm, &mut codes), 4);
        assert_eq!(codes, [0xFF, ulaw_encode(1000), ulaw_encode(-1000), 0x80]);
        let mut back = [0i16; 8];
        assert_eq!(decode_ulaw(&codes, &mut back), 4);
        assert_eq!(
            back[..4],
            [0, ulaw_decode(codes[1]), ulaw_decode(codes[2]), 32124]
        );

        let mut a = [0u8; 5];
        assert_eq!(encode_alaw(&pcm, &mut a), 5);
        let mut lin = [0i16; 5];
        assert_eq!(decode_alaw(&a, &mut lin), 5);
        assert_eq!(lin[3], 32256);
        assert_eq!(lin[4], -32256);

        let mut payload = codes;
        transcode_ulaw_to_alaw(&mut payload);
        assert_eq!(payload, codes.map(ulaw_to_alaw));
        transcode_alaw_to_ulaw(&mut payload);
        assert_eq!(payload, codes.map(|c| alaw_to_ulaw(ulaw_to_alaw(c))));
    }
}
