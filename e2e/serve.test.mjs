// End-to-end test of `convkit serve` in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core). Run `bash scripts/install-e2e.sh` once, build `target/release/convkit`, then
// `node --test e2e/`. Screenshots of every tab go to $E2E_SCREENSHOTS or a fresh temp folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = process.env.CONVKIT_BIN || path.join(root, 'target/release/convkit');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = process.env.E2E_SCREENSHOTS || mkdtempSync(path.join(tmpdir(), 'convkit-e2e-shots-'));
mkdirSync(shots, { recursive: true });

let server; // the convkit serve child process
let base; // its URL
let browser; // the browser context (persistent, on the fresh profile)
let page;
let profile; // Chromium's fresh user-data dir
const offsite = []; // requests that left the server
const pageErrors = [];

/** The core's own answer: `convkit ARGS` printing JSON. */
function core(args) {
  return JSON.parse(execFileSync(BIN, args, { encoding: 'utf8' }));
}

/** The page's number formatting for integers (all values in these checks are integers). */
const int = (v) => {
  assert.ok(Number.isInteger(v), `expected an integer, got ${v}`);
  return String(v);
};

/** A small RGB PNG (a colour gradient), encoded here with zlib and a CRC-32 table. */
function makePng(w, h) {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc(h * (1 + 3 * w));
  for (let y = 0; y < h; y++) {
    const row = y * (1 + 3 * w);
    for (let x = 0; x < w; x++) {
      raw[row + 1 + 3 * x] = (x * 255) / (w - 1);
      raw[row + 2 + 3 * x] = (y * 255) / (h - 1);
      raw[row + 3 + 3 * x] = x > w / 2 ? 200 : 30;
    }
  }
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const idle = (flag = 'pending') =>
  page.waitForFunction((f) => document.body.dataset[f] === '0', flag, { timeout: 20000 });

async function setCell(testid, value) {
  const loc = page.locator(`[data-testid="${testid}"]`);
  await loc.fill(String(value));
  await loc.dispatchEvent('change');
}

async function setNumber(sel, value) {
  await page.locator(sel).fill(String(value));
  await page.locator(sel).dispatchEvent('change');
}

/** The editor grid's values as the CLI's inline syntax (rows separated by ';'). */
async function editorValues(prefix) {
  return page.evaluate((p) => {
    const rows = new Map();
    for (const e of document.querySelectorAll(`[data-testid^="${p}-val-"]`)) {
      const [i, j] = e.dataset.testid.split('-').slice(-2).map(Number);
      if (!rows.has(i)) rows.set(i, []);
      rows.get(i)[j] = e.value;
    }
    return [...rows.keys()].sort((a, b) => a - b).map((i) => rows.get(i).join(',')).join(';');
  }, prefix);
}

const testids = (sel) =>
  page.$$eval(sel, (els) => els.map((e) => e.dataset.testid).sort());

before(async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run cargo build --release first`);
  server = spawn(BIN, ['serve', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  base = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^convkit serve: (http:\/\/127\.0\.0\.1:\d+\/)\n/);
      if (m) resolve(m[1]);
    });
    server.on('exit', (code) => reject(new Error(`convkit serve exited with ${code}: ${out}`)));
  });
  profile = mkdtempSync(path.join(tmpdir(), 'convkit-e2e-profile-'));
  // A fresh, empty profile (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport: { width: 1400, height: 1000 },
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = browser.pages()[0] || (await browser.newPage());
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(base) && !u.startsWith('data:')) offsite.push(u);
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('response', (r) => {
    if (r.status() >= 400) pageErrors.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  await page.goto(base);
  await idle();
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
  if (profile) rmSync(profile, { recursive: true, force: true });
  console.log(`screenshots: ${shots}`);
});

test('1-D example: output cells show 0, 3, 4, -4', async () => {
  await page.selectOption('#dims', '1');
  await idle();
  await setNumber('#in-cols', 6);
  for (const [j, v] of [1, 2, 0, -1, 3, 1].entries()) await setCell(`input-val-0-${j}`, v);
  await setNumber('#k-cols', 3);
  for (const [j, v] of [2, -1, 1].entries()) await setCell(`kernel-val-0-${j}`, v);
  await idle();
  await page.click('#step-last');
  // By hand: 1·2 + 2·(−1) + 0·1 = 0, 2·2 + 0·(−1) + (−1)·1 = 3, 0·2 + (−1)·(−1) + 3·1 = 4,
  // (−1)·2 + 3·(−1) + 1·1 = −4.
  const cells = await testids('[data-testid^="out-cell-"]');
  assert.deepEqual(cells, ['out-cell-0-0', 'out-cell-0-1', 'out-cell-0-2', 'out-cell-0-3']);
  for (const [j, want] of ['0', '3', '4', '-4'].entries()) {
    assert.equal((await page.textContent(`[data-testid="out-cell-0-${j}"]`)).trim(), want);
  }
});

test('an answer for older values that lands after a newer edit is not shown', async () => {
  // Hold the page's next /api/explain request; edit again; release the held one so that its
  // answer lands while the newer edit is still waiting out the page's debounce. The page must
  // go on waiting (pending stays 1) and show the newer values' result.
  let release;
  const held = new Promise((resolve) => {
    release = resolve;
  });
  let first = true;
  await page.route('**/api/explain', async (route) => {
    if (first) {
      first = false;
      await held;
    }
    await route.continue();
  });
  try {
    await setCell('input-val-0-0', 5); // 5·2 + 2·(−1) + 0·1 = 8: the answer held back
    // The held request is out (within 5 s, or the page sent none: fail rather than hang).
    for (let t = 0; first; t += 10) {
      assert.ok(t < 5000, 'the page sent no /api/explain request after the edit');
      await new Promise((r) => setTimeout(r, 10));
    }
    await setCell('input-val-0-0', 7); // 7·2 + 2·(−1) + 0·1 = 12: the answer that must show
    release();
    await idle();
    await page.click('#step-last');
    assert.equal((await page.textContent('[data-testid="out-cell-0-0"]')).trim(), '12');
  } finally {
    release();
    await page.unroute('**/api/explain');
  }
  await setCell('input-val-0-0', 1);
  await idle();
});

let explained; // the core's answer for the 2-D problem on the page

test('2-D, stride 2: output size, values and shape formula equal the core', async () => {
  await page.selectOption('#dims', '2');
  await idle();
  await page.fill('#stride', '2');
  await page.fill('#padding', '1');
  await idle();
  const input = await editorValues('input');
  const weight = await editorValues('kernel');
  explained = core(['explain', '--input', input, '--weight', weight, '--stride', '2', '--padding', '1', '--format', 'json']);
  const [oh, ow] = explained.output_shape.slice(2);
  const cells = await testids('[data-testid^="out-cell-"]');
  assert.equal(cells.length, oh * ow);
  assert.ok(cells.includes(`out-cell-${oh - 1}-${ow - 1}`));
  for (const [a, f] of explained.formula.entries()) {
    assert.equal(await page.textContent(`[data-testid="formula-${a}"]`), f.text);
  }
  await page.click('#step-last');
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      const shown = (await page.textContent(`[data-testid="out-cell-${i}-${j}"]`)).trim();
      assert.equal(shown, int(explained.output[i * ow + j]), `output (${i}, ${j})`);
    }
  }
});

test('stepping: highlighted output cell, window and products follow the core', async () => {
  await page.click('#step-first');
  await page.click('#step-next');
  await page.click('#step-next');
  const step = explained.steps[2];
  const [i, j] = step.out;
  assert.deepEqual(await testids('.cell.out.current'), [`out-cell-${i}-${j}`]);
  const products = await page.$$eval('#products li', (els) => els.map((e) => e.textContent));
  assert.deepEqual(
    products,
    step.terms.map((t) => `${int(t.x)} · ${int(t.w)} = ${int(t.product)}`),
  );
  const win = step.terms.map((t) => `in-cell-${t.padded[0]}-${t.padded[1]}`).sort();
  assert.deepEqual(await testids('.cell.win'), win);
  assert.match(await page.textContent('#step-text'), new RegExp(`^Step 3 of ${explained.steps.length}: output \\(${i}, ${j}\\) = ${int(step.value)}$`));
  await page.screenshot({ path: path.join(shots, 'window.png'), fullPage: true });
});

test('keyboard: space plays and pauses, arrows step', async () => {
  await page.click('h1'); // focus outside any control
  await page.keyboard.press('Space');
  assert.equal(await page.getAttribute('#play', 'aria-pressed'), 'true');
  await page.waitForFunction(() => /^Step ([4-9]|\d\d)/.test(document.querySelector('#step-text').textContent), null, { timeout: 5000 });
  await page.keyboard.press('Space');
  assert.equal(await page.getAttribute('#play', 'aria-pressed'), 'false');
  const stepNo = async () => Number((await page.textContent('#step-text')).match(/^Step (\d+)/)[1]);
  const paused = await stepNo();
  await page.waitForTimeout(1000);
  assert.equal(await stepNo(), paused, 'paused playback moved');
  await page.keyboard.press('ArrowLeft');
  assert.equal(await stepNo(), paused - 1);
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  assert.equal(await stepNo(), paused + 1);
});

test('clicking an output cell highlights its receptive field', async () => {
  await page.click('[data-testid="out-cell-1-1"]');
  const k = explained.steps.findIndex((s) => s.out[0] === 1 && s.out[1] === 1);
  const want = explained.steps[k].terms.map((t) => `in-cell-${t.padded[0]}-${t.padded[1]}`).sort();
  assert.ok(want.length > 0);
  assert.deepEqual(await testids('.cell.rf'), want);
  assert.match(await page.textContent('#rf-text'), /^Output \(1, 1\) reads \d+ cells/);
});

test('image tab: upload a PNG, Sobel, the result has the right size', async () => {
  await page.click('#tab-image');
  // First the embedded 512 × 512 image.
  await page.waitForFunction(() => document.querySelector('#img-out').dataset.width === '512', null, { timeout: 20000 });
  const file = path.join(shots, 'upload.png');
  writeFileSync(file, makePng(40, 30));
  await page.setInputFiles('#img-file', file);
  await page.waitForFunction(() => document.querySelector('#img-out').dataset.width === '40', null, { timeout: 20000 });
  await page.selectOption('#img-kernel', 'box');
  await idle('imagePending');
  await page.selectOption('#img-kernel', 'sobel');
  await idle('imagePending');
  assert.match(await page.textContent('#img-out-size'), /^Output 40 × 30 \(sobel/);
  const size = await page.$eval('#img-out', (img) => img.decode().then(() => [img.naturalWidth, img.naturalHeight]));
  assert.deepEqual(size, [40, 30]);
  assert.equal(await page.locator('#img-kernel-matrix table').count(), 2); // sobel-x and sobel-y
  await page.screenshot({ path: path.join(shots, 'image.png'), fullPage: true });
});

test('layer-stack tab: resnet18 total parameters equal convkit shape', async () => {
  await page.click('#tab-stack');
  await idle('stackPending');
  await page.selectOption('#stack-model', 'resnet18');
  await idle('stackPending');
  const want = core(['shape', '--model', 'resnet18', '--format', 'json']);
  const shown = await page.getAttribute('[data-testid="total-params"]', 'data-value');
  assert.equal(shown, String(want.total.params));
  assert.equal(await page.locator('#stack-table tbody tr[data-testid^="layer-"]').count(), want.layers.length);
  await page.screenshot({ path: path.join(shots, 'stack.png'), fullPage: true });
});

test('nothing was fetched from elsewhere and the page raised no errors', () => {
  assert.deepEqual(offsite, []);
  assert.deepEqual(pageErrors, []);
});
