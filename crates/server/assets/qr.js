// QR Code encoder (ISO/IEC 18004) for burnbox share links.
//
// A share link carries its decryption key in the URL fragment, which must never reach a server,
// so the QR code is drawn in the browser. This module covers exactly what a link needs: byte mode
// (UTF-8), error correction level M, versions 1–25 (up to 997 bytes), automatic mask selection.
// It has no dependencies and produces an SVG without inline styles so it works under a strict CSP.

/** Error correction level M, per version 1..25 (index 0 = version 1):
 *  [EC codewords per block, group-1 blocks, data codewords per group-1 block, group-2 blocks].
 *  Group-2 blocks hold one data codeword more than group-1 blocks (ISO/IEC 18004 table 9). */
const BLOCKS_M = [
  [10, 1, 16, 0], [16, 1, 28, 0], [26, 1, 44, 0], [18, 2, 32, 0], [24, 2, 43, 0],
  [16, 4, 27, 0], [18, 4, 31, 0], [22, 2, 38, 2], [22, 3, 36, 2], [26, 4, 43, 1],
  [30, 1, 50, 4], [22, 6, 36, 2], [22, 8, 37, 1], [24, 4, 40, 5], [24, 5, 41, 5],
  [28, 7, 45, 3], [28, 10, 46, 1], [26, 9, 43, 4], [26, 3, 44, 11], [26, 3, 41, 13],
  [26, 17, 42, 0], [28, 17, 46, 0], [28, 4, 47, 14], [28, 6, 45, 14], [28, 8, 47, 13],
];

/** Row/column centres of alignment patterns for versions 2..25 (index 0 = version 2; annex E). */
const ALIGNMENT = [
  [6, 18], [6, 22], [6, 26], [6, 30], [6, 34],
  [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50], [6, 30, 54], [6, 32, 58], [6, 34, 62],
  [6, 26, 46, 66], [6, 26, 48, 70], [6, 26, 50, 74], [6, 30, 54, 78], [6, 30, 56, 82],
  [6, 30, 58, 86], [6, 34, 62, 90],
  [6, 28, 50, 72, 94], [6, 26, 50, 74, 98], [6, 30, 54, 78, 102], [6, 28, 54, 80, 106],
  [6, 32, 58, 84, 110],
];

const MAX_VERSION = BLOCKS_M.length;
const MODE_BYTE = 0b0100;
const EC_LEVEL_M = 0b00; // the two format-information bits that name level M

// ---------------------------------------------------------------------------------------------
// Reed–Solomon over GF(256) with the QR field polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d).

const EXP = new Uint8Array(510); // doubled so EXP[LOG[a] + LOG[b]] needs no modulo
const LOG = new Uint8Array(256);
for (let i = 0, x = 1; i < 255; i++) {
  EXP[i] = EXP[i + 255] = x;
  LOG[x] = i;
  x <<= 1;
  if (x & 0x100) x ^= 0x11d;
}

const gfMul = (a, b) => (a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]]);

/** Generator polynomial (x - α^0)(x - α^1)…(x - α^(degree-1)), coefficients highest power first. */
function rsGenerator(degree) {
  let poly = [1];
  for (let i = 0; i < degree; i++) {
    const next = new Array(poly.length + 1).fill(0);
    poly.forEach((c, j) => {
      next[j] ^= c; // c·x
      next[j + 1] ^= gfMul(c, EXP[i]); // c·α^i (subtraction is XOR in GF(2^8))
    });
    poly = next;
  }
  return poly;
}

/** The EC codewords: remainder of data(x)·x^degree divided by the generator. */
function rsRemainder(data, generator) {
  const rem = new Array(generator.length - 1).fill(0);
  for (const byte of data) {
    // Shift-register form of polynomial long division: one step per incoming data codeword.
    const factor = byte ^ rem.shift();
    rem.push(0);
    for (let j = 0; j < rem.length; j++) rem[j] ^= gfMul(generator[j + 1], factor);
  }
  return rem;
}

// ---------------------------------------------------------------------------------------------
// Data codewords.

const dataCapacity = (version) => {
  const [, blocks1, data1, blocks2] = BLOCKS_M[version - 1];
  return blocks1 * data1 + blocks2 * (data1 + 1);
};

// The byte-mode character count indicator grows from 8 to 16 bits at version 10.
const countBits = (version) => (version < 10 ? 8 : 16);

/** Smallest version whose level-M data capacity holds `length` bytes in byte mode. */
function chooseVersion(length) {
  for (let version = 1; version <= MAX_VERSION; version++) {
    if (4 + countBits(version) + 8 * length <= 8 * dataCapacity(version)) return version;
  }
  throw new RangeError(`QR code: ${length} bytes do not fit version ${MAX_VERSION}-M`);
}

/** Mode, count, payload, terminator and padding, as the version's full list of data codewords. */
function dataCodewords(bytes, version) {
  const capacity = dataCapacity(version);
  const bits = [];
  const put = (value, length) => {
    for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  };
  put(MODE_BYTE, 4);
  put(bytes.length, countBits(version));
  bytes.forEach((b) => put(b, 8));
  put(0, Math.min(4, capacity * 8 - bits.length)); // terminator, shortened if the symbol is full
  while (bits.length % 8) bits.push(0);

  const codewords = [];
  for (let i = 0; i < bits.length; i += 8) {
    codewords.push(bits.slice(i, i + 8).reduce((acc, bit) => (acc << 1) | bit, 0));
  }
  // The spec's pad codewords alternate so that empty capacity does not form uniform areas.
  for (let pad = 0xec; codewords.length < capacity; pad ^= 0xec ^ 0x11) codewords.push(pad);
  return codewords;
}

/** Splits data into blocks, appends each block's EC codewords, and interleaves them column-wise
 *  so that a local damage spreads over several blocks instead of exhausting one. */
function finalCodewords(data, version) {
  const [ecLength, blocks1, data1, blocks2] = BLOCKS_M[version - 1];
  const generator = rsGenerator(ecLength);
  const blocks = [];
  let offset = 0;
  for (let b = 0; b < blocks1 + blocks2; b++) {
    const length = b < blocks1 ? data1 : data1 + 1;
    const chunk = data.slice(offset, offset + length);
    offset += length;
    blocks.push({ data: chunk, ec: rsRemainder(chunk, generator) });
  }
  const out = [];
  for (let i = 0; i < data1 + 1; i++) {
    for (const block of blocks) if (i < block.data.length) out.push(block.data[i]);
  }
  for (let i = 0; i < ecLength; i++) {
    for (const block of blocks) out.push(block.ec[i]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// BCH-protected format and version information.

/** `value` followed by the remainder of value·x^degree modulo `generator` (a BCH codeword). */
function bchEncode(value, generator, degree) {
  let rem = value << degree;
  for (let bit = 31 - Math.clz32(rem); bit >= degree; bit--) {
    if ((rem >>> bit) & 1) rem ^= generator << (bit - degree);
  }
  return (value << degree) | rem;
}

// The XOR with 0x5412 keeps the format information from ever being all light.
const formatBits = (mask) => bchEncode((EC_LEVEL_M << 3) | mask, 0x537, 10) ^ 0x5412;
const versionBits = (version) => bchEncode(version, 0x1f25, 12);

// ---------------------------------------------------------------------------------------------
// The symbol grid.

/** The eight data masks, as (row, column) → "invert this module". */
const MASKS = [
  (r, c) => (r + c) % 2 === 0,
  (r) => r % 2 === 0,
  (r, c) => c % 3 === 0,
  (r, c) => (r + c) % 3 === 0,
  (r, c) => (Math.floor(r / 2) + Math.floor(c / 3)) % 2 === 0,
  (r, c) => ((r * c) % 2) + ((r * c) % 3) === 0,
  (r, c) => (((r * c) % 2) + ((r * c) % 3)) % 2 === 0,
  (r, c) => (((r + c) % 2) + ((r * c) % 3)) % 2 === 0,
];

class Grid {
  constructor(version) {
    this.size = 17 + 4 * version;
    const rows = () => Array.from({ length: this.size }, () => new Array(this.size).fill(false));
    this.dark = rows();
    this.fixed = rows(); // function-pattern modules: never hold data, never masked
  }

  setFixed(x, y, dark) {
    this.dark[y][x] = dark;
    this.fixed[y][x] = true;
  }

  drawFunctionPatterns(version) {
    const n = this.size;
    // Finder patterns with their light separators (the ring at distance 4 from the centre).
    for (const [cx, cy] of [[3, 3], [n - 4, 3], [3, n - 4]]) {
      for (let dy = -4; dy <= 4; dy++) {
        for (let dx = -4; dx <= 4; dx++) {
          const x = cx + dx, y = cy + dy;
          if (x < 0 || y < 0 || x >= n || y >= n) continue;
          const ring = Math.max(Math.abs(dx), Math.abs(dy));
          this.setFixed(x, y, ring !== 2 && ring !== 4);
        }
      }
    }
    // Alignment patterns at every combination of centres, except where they would land on a
    // finder. Drawn before the timing patterns, so "already fixed" here means "a finder".
    const centres = version > 1 ? ALIGNMENT[version - 2] : [];
    for (const cy of centres) {
      for (const cx of centres) {
        if (this.fixed[cy][cx]) continue;
        for (let dy = -2; dy <= 2; dy++) {
          for (let dx = -2; dx <= 2; dx++) {
            this.setFixed(cx + dx, cy + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
          }
        }
      }
    }
    // Timing patterns; where they cross alignment patterns, both agree on the colour.
    for (let i = 8; i < n - 8; i++) {
      this.setFixed(6, i, i % 2 === 0);
      this.setFixed(i, 6, i % 2 === 0);
    }
    this.setFixed(8, n - 8, true); // the always-dark module beside the bottom-left finder
    if (version >= 7) {
      const bits = versionBits(version);
      for (let i = 0; i < 18; i++) {
        const dark = ((bits >>> i) & 1) === 1;
        const a = n - 11 + (i % 3), b = Math.floor(i / 3);
        this.setFixed(a, b, dark); // above-left of the top-right finder
        this.setFixed(b, a, dark); // above-right of the bottom-left finder
      }
    }
    this.drawFormat(0); // reserves the format areas; the real mask is written later
  }

  /** Writes both copies of the 15-bit format information (bit 14 = most significant). */
  drawFormat(mask) {
    const n = this.size;
    const bits = formatBits(mask);
    for (let i = 0; i < 15; i++) {
      const dark = ((bits >>> i) & 1) === 1;
      // Copy 1 wraps the top-left finder: bits 0–7 up column 8, bits 8–14 leftwards along row 8,
      // stepping over the timing patterns in row and column 6.
      if (i < 8) this.setFixed(8, i < 6 ? i : i + 1, dark);
      else this.setFixed(i === 8 ? 7 : 14 - i, 8, dark);
      // Copy 2 is split: bits 0–7 along row 8 under the top-right finder, bits 8–14 down
      // column 8 beside the bottom-left finder.
      if (i < 8) this.setFixed(n - 1 - i, 8, dark);
      else this.setFixed(8, n - 15 + i, dark);
    }
  }

  /** Places codeword bits in two-module-wide columns, zig-zagging up and down from the
   *  bottom-right corner and skipping function modules. Leftover modules stay light
   *  (they are the spec's remainder bits, which are zero). */
  placeData(codewords) {
    const n = this.size;
    const total = codewords.length * 8;
    let index = 0;
    let upward = true;
    for (let right = n - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5; // column 6 is the vertical timing pattern
      for (let step = 0; step < n; step++) {
        const y = upward ? n - 1 - step : step;
        for (const x of [right, right - 1]) {
          if (this.fixed[y][x]) continue;
          // Most significant bit of each codeword first.
          const bit = index < total ? (codewords[index >>> 3] >>> (7 - (index & 7))) & 1 : 0;
          this.dark[y][x] = bit === 1;
          index++;
        }
      }
      upward = !upward;
    }
  }

  /** XORs a mask onto the data modules; applying it twice undoes it. */
  applyMask(mask) {
    const test = MASKS[mask];
    for (let y = 0; y < this.size; y++) {
      for (let x = 0; x < this.size; x++) {
        if (!this.fixed[y][x] && test(y, x)) this.dark[y][x] = !this.dark[y][x];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Mask evaluation (the four penalty rules N1–N4).

/** Penalty for one row or column: runs of five or more (N1) and finder-like 1:1:3:1:1 patterns
 *  with four light modules on one side (N3). Outside the symbol counts as light: quiet zone. */
function linePenalty(line) {
  let score = 0;
  let run = 1;
  for (let i = 1; i <= line.length; i++) {
    if (i < line.length && line[i] === line[i - 1]) {
      run++;
    } else {
      if (run >= 5) score += 3 + (run - 5);
      run = 1;
    }
  }
  const light = (from, to) => {
    for (let i = from; i < to; i++) if (i >= 0 && i < line.length && line[i]) return false;
    return true;
  };
  const finder = [true, false, true, true, true, false, true];
  for (let i = 0; i + 7 <= line.length; i++) {
    const isFinder = finder.every((dark, k) => line[i + k] === dark);
    if (isFinder && (light(i - 4, i) || light(i + 7, i + 11))) score += 40;
  }
  return score;
}

/** Total penalty of a finished symbol; the mask with the lowest is the easiest to scan. */
function penalty(dark) {
  const n = dark.length;
  let score = 0;
  for (let i = 0; i < n; i++) {
    score += linePenalty(dark[i]);
    score += linePenalty(dark.map((row) => row[i]));
  }
  // N2: every 2×2 block of one colour (overlapping blocks count separately).
  for (let y = 0; y + 1 < n; y++) {
    for (let x = 0; x + 1 < n; x++) {
      const c = dark[y][x];
      if (dark[y][x + 1] === c && dark[y + 1][x] === c && dark[y + 1][x + 1] === c) score += 3;
    }
  }
  // N4: 10 points for each full 5% the dark proportion deviates from 50%.
  const darkCount = dark.reduce((sum, row) => sum + row.filter(Boolean).length, 0);
  score += 10 * Math.floor(Math.abs(darkCount * 20 - n * n * 10) / (n * n));
  return score;
}

// ---------------------------------------------------------------------------------------------
// Public API.

/** The QR code of `text` (UTF-8, byte mode, error correction level M, smallest version 1..25 that
 *  fits, mask chosen by the standard's penalty rules) as a square matrix: rows of booleans
 *  (true = dark). Throws RangeError when the text does not fit version 25-M.
 *  @param {string} text
 *  @returns {boolean[][]} */
export function qrMatrix(text) {
  const bytes = Array.from(new TextEncoder().encode(text));
  const version = chooseVersion(bytes.length);
  const grid = new Grid(version);
  grid.drawFunctionPatterns(version);
  grid.placeData(finalCodewords(dataCodewords(bytes, version), version));

  // Try every mask (with its format information, which the penalties also see); keep the first
  // with the lowest penalty.
  let best = 0;
  let bestScore = Infinity;
  for (let mask = 0; mask < MASKS.length; mask++) {
    grid.applyMask(mask);
    grid.drawFormat(mask);
    const score = penalty(grid.dark);
    if (score < bestScore) [best, bestScore] = [mask, score];
    grid.applyMask(mask);
  }
  grid.applyMask(best);
  grid.drawFormat(best);
  return grid.dark;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const QUIET_ZONE = 4; // modules of light margin the spec requires around the symbol

/** An <svg> element drawing the QR code of `text`: a white background with a 4-module quiet
 *  zone and the dark modules as one <path> (horizontal runs merged into rectangles). Its viewBox
 *  is in modules, so size it with CSS. Colours are `fill` attributes, as the page CSP forbids
 *  inline styles.
 *  @param {string} text what to encode (see qrMatrix)
 *  @param {string} label accessible name, e.g. "QR code of the share link"
 *  @returns {SVGSVGElement} */
export function qrSvg(text, label) {
  const matrix = qrMatrix(text);
  const dim = matrix.length + 2 * QUIET_ZONE;
  const el = (name, attrs) => {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    return node;
  };

  let d = '';
  matrix.forEach((row, y) => {
    for (let x = 0; x < row.length; x++) {
      if (!row[x]) continue;
      const start = x;
      while (x + 1 < row.length && row[x + 1]) x++;
      const width = x - start + 1;
      d += `M${start + QUIET_ZONE} ${y + QUIET_ZONE}h${width}v1h${-width}z`;
    }
  });

  // crispEdges keeps anti-aliasing seams from appearing between adjacent rows.
  const svg = el('svg', {
    viewBox: `0 0 ${dim} ${dim}`, role: 'img', 'aria-label': label,
    'shape-rendering': 'crispEdges',
  });
  svg.append(
    el('rect', { width: dim, height: dim, fill: '#fff' }),
    el('path', { d, fill: '#000' }),
  );
  return svg;
}
