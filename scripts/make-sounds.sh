#!/usr/bin/env bash
# Regenerates the shipped demo prompts and music on hold in sounds/.
#
# Every output is an 8 kHz mono 16-bit signed PCM WAV (DESIGN §1, §4): speech
# comes from espeak-ng, converted and tidied with sox (silence trimmed, short
# fades, peak normalised to -3 dBFS); the beep and hold.wav are synthesized
# with sox. The outputs are deterministic (no random dither), so running the
# script again on the same tools leaves the committed files unchanged.
#
# Usage (from the repository root): scripts/make-sounds.sh
# Needs: espeak-ng, sox (Debian packages `espeak-ng` and `sox`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=sounds
VOICE=(-v en-us -s 150)
# -R: repeatable mode; -D: no dither, so silence stays digital silence and
# the same input always gives the same bytes.
SOX=(sox -R -D)
FORMAT=(-r 8000 -c 1 -b 16 -e signed-integer)

for tool in espeak-ng sox soxi; do
    command -v "$tool" >/dev/null || {
        echo "make-sounds: $tool is not installed (apt-get install espeak-ng sox)" >&2
        exit 1
    }
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$OUT/announce/numbers"
GENERATED=()

# say FILE TEXT: speak TEXT into $OUT/FILE.
say() {
    local file=$1 text=$2
    espeak-ng "${VOICE[@]}" -w "$WORK/speech.wav" "$text"
    # Trim leading and trailing silence, fade the edges to avoid clicks,
    # resample, leave a short gap either side (so phrases can be chained),
    # then normalise the peak to -3 dBFS.
    "${SOX[@]}" "$WORK/speech.wav" "$WORK/trimmed.wav" \
        silence 1 0.005 0.1% reverse silence 1 0.005 0.1% reverse
    "${SOX[@]}" "$WORK/trimmed.wav" "${FORMAT[@]}" "$OUT/$file" \
        fade t 0.005 -0 0.02 \
        rate 8000 \
        pad 0.05 0.15 \
        norm -3
    GENERATED+=("$OUT/$file")
}

# --- IVR prompts (the demo flow ivr-flows/main.yaml plays the first six) ---
say welcome.wav "Thank you for calling Switchboard support."
say menu.wav "For sales, press 1. For support, press 2. To speak to an operator, press 0."
say invalid.wav "Sorry, that is not a valid choice."
say rate.wav "Please rate your call from 1 to 5, where 5 is excellent."
say closed.wav "Our office is closed right now. Our opening hours are Monday to Friday, 9 to 6, and Saturday 10 to 2."
say leave-message.wav "Please leave a message after the tone, and we will call you back."
say thanks.wav "Thank you. Goodbye."

# --- Voicemail beep: 400 ms of 1 kHz ---
"${SOX[@]}" -n "${FORMAT[@]}" "$OUT/beep.wav" synth 0.4 sine 1000 fade t 0.01 0.4 0.01 norm -6
GENERATED+=("$OUT/beep.wav")

# --- Queue announcements ("You are caller number 3. Your estimated wait is 4 minutes.") ---
say announce/you-are-caller-number.wav "You are caller number"
say announce/your-estimated-wait-is.wav "Your estimated wait is"
say announce/minutes.wav "minutes"
say announce/minute.wav "minute"
say announce/less-than-a-minute.wav "less than a minute"
say announce/please-hold.wav "Please hold, an agent will be with you shortly."

# Numbers as words, so the voice never reads a digit string its own way.
WORDS=(zero one two three four five six seven eight nine ten eleven twelve
    thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty)
for n in "${!WORDS[@]}"; do
    say "announce/numbers/$n.wav" "${WORDS[$n]}"
done
TENS=([30]=thirty [40]=forty [50]=fifty [60]=sixty [70]=seventy [80]=eighty [90]=ninety)
for n in "${!TENS[@]}"; do
    say "announce/numbers/$n.wav" "${TENS[$n]}"
done
say announce/numbers/hundred.wav "hundred"

# --- Music on hold: a 24 s loop of four soft chords ---
# Cmaj7 - Am7 - Fmaj7 - G6, 6 s each: a quiet sine pad, a low root, and a
# plucked arpeggio of eighth notes. The loop fades in and out at its ends so
# that playing it again and again joins without a click. Notes are written
# as semitones from A4 (sox's %N notation).
CHORD_SECONDS=6
STEP=0.75 # seconds between arpeggio notes (8 per chord)
PADS=("-21 -9 -5 -2 2" "-24 -12 -9 -5 -2" "-28 -16 -12 -9 -5" "-26 -14 -10 -7 -5")
ARPS=("-9 -5 -2 2 3 2 -2 -5" "-12 -9 -5 -2 0 -2 -5 -9" "-16 -12 -9 -5 -4 -5 -9 -12" "-14 -10 -7 -5 -2 -5 -7 -10")

chords=()
for c in "${!PADS[@]}"; do
    read -r -a pad <<<"${PADS[$c]}"
    read -r -a arp <<<"${ARPS[$c]}"
    # Pad: root an octave down plus the chord tones, mixed into one channel,
    # with a slow swell so chord changes breathe rather than click.
    synth=(synth "$CHORD_SECONDS" sine "%$((pad[0]))")
    for note in "${pad[@]:1}"; do
        synth+=(sine mix "%$note")
    done
    "${SOX[@]}" -n "${FORMAT[@]}" "$WORK/pad$c.wav" "${synth[@]}" \
        tremolo 0.25 20 fade q 0.6 -0 0.9 vol 0.08
    # Arpeggio: one plucked note per step, each delayed to its place.
    notes=()
    for i in "${!arp[@]}"; do
        delay=$(awk -v i="$i" -v s="$STEP" 'BEGIN { printf "%.3f", i * s }')
        "${SOX[@]}" -n "${FORMAT[@]}" "$WORK/note$c-$i.wav" \
            synth 1.6 pluck "%${arp[$i]}" fade q 0.005 -0 1.2 \
            pad "$delay" vol 0.25
        notes+=("$WORK/note$c-$i.wav")
    done
    "${SOX[@]}" -m "$WORK/pad$c.wav" "${notes[@]}" "${FORMAT[@]}" "$WORK/chord$c.wav" \
        trim 0 "$CHORD_SECONDS"
    chords+=("$WORK/chord$c.wav")
done
"${SOX[@]}" "${chords[@]}" "${FORMAT[@]}" "$WORK/loop.wav"
# A gentle low-pass rounds off the pluck attack; then the loop's own fades
# and a quieter peak than speech (-8 dBFS) so hold music never shouts.
# (Two passes: after reverb, sox misjudges the length the fade counts from.)
"${SOX[@]}" "$WORK/loop.wav" "$WORK/room.wav" lowpass 2500 reverb 30 50 60 channels 1
"${SOX[@]}" "$WORK/room.wav" "${FORMAT[@]}" "$OUT/hold.wav" fade t 0.8 -0 1.2 norm -8
GENERATED+=("$OUT/hold.wav")

# --- Every output must be 8000 Hz, mono, 16-bit signed PCM ---
bad=0
for f in "${GENERATED[@]}"; do
    rate=$(soxi -r "$f")
    channels=$(soxi -c "$f")
    bits=$(soxi -b "$f")
    encoding=$(soxi -e "$f")
    if [[ $rate != 8000 || $channels != 1 || $bits != 16 || $encoding != "Signed Integer PCM" ]]; then
        echo "make-sounds: $f is $rate Hz, $channels channel(s), $bits-bit $encoding" >&2
        bad=1
    fi
done
((bad == 0)) || exit 1
echo "make-sounds: ${#GENERATED[@]} files in $OUT/ (8000 Hz, mono, 16-bit)"
