/**
 * One log line as a terminal colours it (ANSI SGR sequences, read by anser), and what a
 * terminal would obey rather than show (other escape sequences, control characters,
 * bidirectional overrides that reorder what follows) written out as escapes: `\x1b]52;…`.
 */
import Anser, { type AnserJsonEntry } from "anser";
import { memo, type CSSProperties } from "react";

const UNSHOWABLE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// anser's names of the 16 colours, in SGR order; the palette is in styles.css (--ansi-*).
const NAMED = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];
const SIXTEEN = [...NAMED.map((name) => `ansi-${name}`), ...NAMED.map((name) => `ansi-bright-${name}`)];

export function shown(text: string): string {
  return text.replace(UNSHOWABLE, (character) => {
    const code = character.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** xterm's 256 colours: the 16, a 6×6×6 cube, then 24 greys. */
function paletteColour(index: number): string {
  if (index < 16) return `var(--${SIXTEEN[index]})`;
  if (index >= 232) {
    const grey = 8 + (index - 232) * 10;
    return `rgb(${grey}, ${grey}, ${grey})`;
  }
  const level = (step: number) => (step === 0 ? 0 : 55 + step * 40);
  const cube = index - 16;
  return `rgb(${level(Math.floor(cube / 36))}, ${level(Math.floor(cube / 6) % 6)}, ${level(cube % 6)})`;
}

function colour(name: string | null, truecolor: string | null): string | undefined {
  if (name === null) return undefined;
  if (name === "ansi-truecolor") return truecolor ? `rgb(${truecolor})` : undefined;
  const palette = /^ansi-palette-(\d+)$/.exec(name);
  return palette ? paletteColour(Number(palette[1])) : `var(--${name})`;
}

function style(part: AnserJsonEntry): CSSProperties {
  const lines = [
    part.decorations.includes("underline") ? "underline" : "",
    part.decorations.includes("strikethrough") ? "line-through" : "",
  ].join(" ");
  return {
    color: colour(part.fg, part.fg_truecolor),
    backgroundColor: colour(part.bg, part.bg_truecolor),
    fontWeight: part.decorations.includes("bold") ? 700 : undefined,
    fontStyle: part.decorations.includes("italic") ? "italic" : undefined,
    opacity: part.decorations.includes("dim") ? 0.7 : undefined,
    textDecoration: lines.trim() || undefined,
  };
}

export const LogMessage = memo(function LogMessage({ text }: { text: string }) {
  if (!text.includes("\x1b")) return <>{shown(text)}</>;
  const parts = Anser.ansiToJson(text, { json: true, remove_empty: true, use_classes: true });
  return (
    <>
      {parts.map((part, index) => (
        <span key={index} style={style(part)}>
          {shown(part.content)}
        </span>
      ))}
    </>
  );
});
