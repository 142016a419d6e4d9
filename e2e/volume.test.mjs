// End-to-end test of the Volume and Network tabs of `convkit serve` in headless Chromium (see
// serve.test.mjs for the set-up). The server runs in an empty folder, so it has no trained model
// and trains one at start-up. Screenshots go to $E2E_SCREENSHOTS or a fresh temp folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = process.env.CONVKIT_BIN || path.join(root, 'target/release/convkit');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = process.env.E2E_SCREENSHOTS || mkdtempSync(path.join(tmpdir(), 'convkit-e2e-shots-'));
mkdirSync(shots, { recursive: true });

let server;
let serverErr = '';
let base;
let browser;
let page;
let profile;
let cwd; // the server's empty working folder
const offsite = [];
const pageErrors = [];

const core = (args) => JSON.parse(execFileSync(BIN, args, { encoding: 'utf8' }));
const text = async (testid) => (await page.textContent(`[data-testid="${testid}"]`)).trim();
const int = (v) => {
  assert.ok(Number.isInteger(v), `expected an integer, got ${v}`);
  return String(v);
};
const idle = (flag) => page.waitForFunction((f) => document.body.dataset[f] === '0', flag, { timeout: 20000 });
const stepNo = async () => Number((await page.textContent('#vol-step-text')).match(/^Step (\d+)/)[1]);

before(async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run cargo build --release first`);
  cwd = mkdtempSync(path.join(tmpdir(), 'convkit-e2e-cwd-'));
  server = spawn(BIN, ['serve', '--port', '0'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr.on('data', (d) => {
    serverErr += d;
  });
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
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport: { width: 1400, height: 1000 },
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
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
  await page.click('#tab-volume');
  await idle('volPending');
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
  for (const d of [profile, cwd]) if (d) rmSync(d, { recursive: true, force: true });
  console.log(`screenshots: ${shots}`);
});

/** The Volume tab's typed values as `convkit explain` flags. */
async function volumeArgs() {
  const v = await page.evaluate(() => {
    const val = (id) => Number(document.querySelector(`[data-testid="${id}"]`).value);
    const C = Number(document.querySelector('#vol-c').value);
    const H = Number(document.querySelector('#vol-h').value);
    const W = Number(document.querySelector('#vol-w').value);
    const K = Number(document.querySelector('#vol-k').value);
    const k = Number(document.querySelector('#vol-ks').value);
    const input = [];
    for (let c = 0; c < C; c++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) input.push(val(`vol-in-${c}-${i}-${j}`));
    const weight = [];
    const per = document.querySelectorAll('[data-testid^="vol-w-0-"][data-testid$="-0-0"]').length;
    for (let f = 0; f < K; f++) for (let c = 0; c < per; c++) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) weight.push(val(`vol-w-${f}-${c}-${i}-${j}`));
    const bias = [];
    for (let f = 0; f < K; f++) bias.push(val(`vol-b-${f}`));
    return { C, H, W, K, k, per, input, weight, bias };
  });
  return {
    v,
    args: ['explain', '--input', v.input.join(','), '--input-shape', `1,${v.C},${v.H},${v.W}`,
      '--weight', v.weight.join(','), '--weight-shape', `${v.K},${v.per},${v.k},${v.k}`,
      '--bias', v.bias.join(','), '--groups', String(v.C / v.per), '--format', 'json'],
  };
}

/** Products, per-channel sums, the channel total, bias and output of the shown step equal the core's. */
async function checkStep(ex, n) {
  const step = ex.steps[n];
  assert.equal(await stepNo(), n + 1);
  const channels = [...new Set(step.terms.map((t) => t.c))];
  for (const c of channels) {
    const terms = step.terms.filter((t) => t.c === c);
    const shown = await page.$$eval(`[data-testid^="vol-product-${c}-"]`, (els) => els.map((e) => e.textContent));
    assert.deepEqual(shown, terms.map((t) => `${int(t.x)} · ${int(t.w)} = ${int(t.product)}`), `step ${n} channel ${c}`);
    assert.equal(await text(`vol-chsum-${c}`), int(terms.reduce((s, t) => s + t.product, 0)), `step ${n} channel ${c} sum`);
  }
  assert.equal(await text('vol-sum'), int(step.sum));
  assert.equal(await text('vol-bias'), int(step.bias));
  assert.equal(await text('vol-value'), int(step.value));
  assert.deepEqual(await page.$$eval('#panel-volume .cell.out.current', (els) => els.map((e) => e.dataset.testid)),
    [`vol-out-${step.k}-${step.out[0]}-${step.out[1]}`]);
}

let explained;

test('volume: 3 channels, 2 filters: products, per-channel sums and outputs equal convkit explain', async () => {
  const { v, args } = await volumeArgs();
  assert.equal(v.C, 3);
  assert.equal(v.K, 2);
  explained = core(args);
  await checkStep(explained, 0);
  await page.click('#vol-next');
  await page.click('#vol-next');
  await checkStep(explained, 2);
  // A step of the second filter.
  const second = explained.steps.findIndex((s) => s.k === 1);
  assert.ok(second > 0);
  await page.click('#vol-last');
  for (let i = 0; i < explained.steps.length - 1 - second; i++) await page.click('#vol-prev');
  await checkStep(explained, second);
  // Every output of both maps, once all are filled in.
  await page.click('#vol-last');
  const [K, oh, ow] = explained.output_shape.slice(1);
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) assert.equal(await text(`vol-out-${k}-${i}-${j}`), int(explained.output[(k * oh + i) * ow + j]));
    }
  }
  for (const [a, f] of explained.formula.entries()) assert.equal(await text(`vol-formula-${a}`), f.text);
  const [wk, wc, kh, kw] = explained.weight_shape;
  assert.equal(await text('vol-params'), `K·(C/groups)·k·k + K = ${wk}·${wc}·${kh}·${kw} + ${wk} = ${wk * wc * kh * kw + wk}`);
  await page.click('#vol-first');
  await page.click('#vol-next');
  await page.screenshot({ path: path.join(shots, 'volume.png'), fullPage: true });
});

test('volume: stepping and playing fill the feature maps in order', async () => {
  await page.click('#vol-first');
  assert.equal(await page.locator('#panel-volume .cell.out.filled').count(), 1);
  await page.click('#vol-play');
  assert.equal(await page.getAttribute('#vol-play', 'aria-pressed'), 'true');
  await page.waitForFunction(() => /^Step ([4-9]|\d\d)/.test(document.querySelector('#vol-step-text').textContent), null, { timeout: 10000 });
  await page.click('#vol-play');
  assert.equal(await page.getAttribute('#vol-play', 'aria-pressed'), 'false');
  const paused = await stepNo();
  await page.waitForTimeout(800);
  assert.equal(await stepNo(), paused, 'paused playback moved');
  assert.equal(await page.locator('#panel-volume .cell.out.filled').count(), paused);
  await checkStep(explained, paused - 1);
  await page.click('#vol-prev');
  await checkStep(explained, paused - 2);
  await page.click('#vol-next');
  await page.click('#vol-next');
  await checkStep(explained, paused);
  // Playing runs to the end and stops there.
  await page.click('#vol-play');
  await page.waitForFunction(() => document.querySelector('#vol-play').getAttribute('aria-pressed') === 'false', null, { timeout: 60000 });
  assert.equal(await stepNo(), explained.steps.length);
  assert.equal(await page.locator('#panel-volume .cell.out.filled').count(), explained.steps.length);
});

test('volume: depthwise preset, each filter reads one channel', async () => {
  await page.selectOption('#vol-preset', 'edge-per-channel');
  await idle('volPending');
  assert.equal(await page.inputValue('#vol-groups'), 'dw');
  const { v, args } = await volumeArgs();
  assert.equal(v.per, 1);
  const ex = core(args);
  assert.equal(ex.groups, 3);
  await page.click('#vol-last');
  await checkStep(ex, ex.steps.length - 1);
  const last = ex.steps[ex.steps.length - 1];
  for (let c = 0; c < v.C; c++) {
    const unread = await page.locator(`[data-testid="vol-chan-${c}"].unread`).count();
    assert.equal(unread, c === last.terms[0].c ? 0 : 1, `channel ${c}`);
  }
  assert.equal(await text('vol-params'), `K·(C/groups)·k·k + K = ${v.K}·1·3·3 + ${v.K} = ${v.K * 9 + v.K}`);
});

test('volume: the RGB edge preset runs on a crop of the photo', async () => {
  await page.selectOption('#vol-preset', 'rgb-edge');
  await idle('volPending');
  assert.equal(await page.inputValue('#vol-source'), 'photo');
  assert.equal(await page.locator('#vol-error').isHidden(), true);
  assert.equal(await page.locator('.vol-chan').count(), 3);
  assert.match(await page.textContent('[data-testid="vol-chan-0"] h3'), /^R/);
  await page.screenshot({ path: path.join(shots, 'volume-photo.png'), fullPage: true });
});

let shape; // convkit shape for the network's stack

test('network: trained at start-up, one map per channel of each layer', async () => {
  await page.click('#tab-network');
  await page.waitForFunction(() => document.querySelector('#net-status').dataset.state === 'ready', null, { timeout: 120000 });
  await idle('netPending');
  assert.match(await page.textContent('#net-status'), /trained at start-up/);
  assert.match(serverErr, /no trained model in convkit-train-demo: training one/);
  const info = await (await page.request.get(`${base}api/network`)).json();
  shape = core(['shape', '--input', '1,1,28,28', '--layers', info.stack, '--format', 'json']);
  assert.equal(shape.layers.length, 7);
  for (const [li, l] of shape.layers.entries()) {
    assert.equal(await page.locator(`[data-testid^="net-map-${li}-"]`).count(), l.output[1], `layer ${li} ${l.text}`);
  }
  assert.ok(info.classes.includes(await text('net-prediction')));
});

test('network: a clicked cell highlights the receptive field convkit shape gives', async () => {
  for (const [li, c, i, j] of [[0, 1, 10, 10], [5, 3, 3, 3], [3, 0, 6, 2]]) {
    const cv = page.locator(`[data-testid="net-map-${li}-${c}"]`);
    const [h, w] = shape.layers[li].output.slice(2);
    // Playwright's position is relative to the padding box, which clientWidth/Height measure.
    const [bw, bh] = await cv.evaluate((e) => [e.clientWidth, e.clientHeight]);
    await cv.click({ position: { x: ((j + 0.5) / w) * bw, y: ((i + 0.5) / h) * bh } });
    await idle('netPending');
    const rf = shape.layers[li].rf;
    assert.equal(await page.getAttribute('#net-rf', 'data-rf-rows'), String(rf[0]), `layer ${li}`);
    assert.equal(await page.getAttribute('#net-rf', 'data-rf-cols'), String(rf[1]), `layer ${li}`);
    assert.equal(await text('net-rf-size'), `${rf[0]} × ${rf[1]}`);
    assert.match(await page.textContent('#net-rf-text'), new RegExp(`cell \\(${i}, ${j}\\)`));
    if (li === 3) assert.equal(await page.locator('[data-testid^="net-ch-"]').count(), shape.layers[2].output[1]);
  }
  await page.screenshot({ path: path.join(shots, 'network.png'), fullPage: true });
});

test('volume/network: nothing was fetched from elsewhere and the page raised no errors', () => {
  assert.deepEqual(offsite, []);
  assert.deepEqual(pageErrors, []);
});
