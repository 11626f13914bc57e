// A short tone (Web Audio: no file to load), for the wallboard's alerts and
// the agent page's background notifications — one copy for both pages: the
// agent page imports it as `../wallboard/tone.js` (served to both, like
// `/client/`, under the build's versioned path).

let audio = null;

/**
 * Plays a tone of `frequency` Hz for `seconds`. Returns whether it started
 * (false where the browser has no audio): the page's notification and its
 * text remain either way.
 */
export function tone(frequency, seconds) {
  try {
    audio ??= new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = frequency;
    gain.gain.value = 0.08;
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + seconds);
    return true;
  } catch {
    return false;
  }
}
