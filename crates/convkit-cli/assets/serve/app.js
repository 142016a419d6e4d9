// convkit serve: the page's behaviour. Every number shown comes from the server's JSON API
// (/api/explain, /api/filter, /api/shape); this file only draws it.
'use strict';

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'testid') e.dataset.testid = v;
    else e.setAttribute(k, v);
  }
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v) {
  if (v === null || v === undefined) return '';
  if (Number.isInteger(v)) return String(v);
  const s = v.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
  return s === '-0' ? '0' : s;
}

// A value that JSON could not carry (−∞ in max pooling's padding) arrives as null.
const fmtx = (v) => (v === null ? '−∞' : fmt(v));

async function post(path, body) {
  const resp = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  let json;
  try {
    json = await resp.json();
  } catch (e) {
    throw new Error(`${path}: HTTP ${resp.status}`);
  }
  if (!resp.ok) throw new Error(json.error || `${path}: HTTP ${resp.status}`);
  return json;
}

function showError(node, msg) {
  node.hidden = !msg;
  node.textContent = msg || '';
}

// ---------------------------------------------------------------- tabs

const TABS = ['window', 'image', 'stack', 'volume', 'network'];
// Tabs defined in their own files (volume.js, network.js) register here.
const extraTabs = {};
function selectTab(name, focus) {
  for (const t of TABS) {
    const tab = $(`#tab-${t}`);
    const on = t === name;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`#panel-${t}`).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (name !== 'window') stopPlaying();
  if (name === 'image') imageTab.activate();
  if (name === 'stack') stackTab.activate();
  for (const [t, tab] of Object.entries(extraTabs)) {
    if (t === name) tab.activate();
    else if (tab.deactivate) tab.deactivate();
  }
}
for (const t of TABS) {
  const tab = $(`#tab-${t}`);
  tab.addEventListener('click', () => selectTab(t, false));
  tab.addEventListener('keydown', (ev) => {
    const i = TABS.indexOf(t);
    if (ev.key === 'ArrowRight') selectTab(TABS[(i + 1) % TABS.length], true);
    else if (ev.key === 'ArrowLeft') selectTab(TABS[(i + TABS.length - 1) % TABS.length], true);
    else return;
    ev.preventDefault();
  });
}

// ---------------------------------------------------------------- sliding window

const PRESETS_2D = {
  identity: [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
  box: [[1, 1, 1], [1, 1, 1], [1, 1, 1]],
  edge: [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
  'sobel-x': [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
  'sobel-y': [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
  laplacian: [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
  sharpen: [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
  emboss: [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
};
const PRESETS_1D = {
  example: [[2, -1, 1]],
  identity: [[0, 1, 0]],
  box: [[1, 1, 1]],
  difference: [[-1, 0, 1]],
  'second-difference': [[1, -2, 1]],
};

const W = {
  dims: 2,
  input: [],
  kernel: [],
  data: null, // the last /api/explain answer
  cur: 0, // current step
  selected: null, // clicked output step, for the receptive field
  timer: null,
  seq: 0,
  debounce: null,
};

function defaults(dims) {
  W.dims = dims;
  if (dims === 1) {
    W.input = [[1, 2, 0, -1, 3, 1]];
    W.kernel = PRESETS_1D.example.map((r) => r.slice());
  } else {
    W.input = [];
    for (let i = 0; i < 5; i++) W.input.push([0, 1, 2, 3, 4].map((j) => ((i * 3 + j * 2) % 7) - 2));
    W.kernel = PRESETS_2D['sobel-x'].map((r) => r.slice());
  }
  $('#in-rows').value = W.input.length;
  $('#in-cols').value = W.input[0].length;
  $('#k-rows').value = W.kernel.length;
  $('#k-cols').value = W.kernel[0].length;
  const presets = dims === 1 ? PRESETS_1D : PRESETS_2D;
  const sel = $('#kernel-preset');
  sel.replaceChildren(...Object.keys(presets).map((k) => el('option', { value: k }, k)), el('option', { value: 'custom' }, 'custom'));
  sel.value = dims === 1 ? 'example' : 'sobel-x';
  document.body.classList.toggle('one-d', dims === 1);
}

function resize(m, rows, cols) {
  const out = [];
  for (let i = 0; i < rows; i++) {
    const row = [];
    for (let j = 0; j < cols; j++) row.push(m[i] && m[i][j] !== undefined ? m[i][j] : 0);
    out.push(row);
  }
  return out;
}

function clampInt(input, lo, hi) {
  let v = parseInt(input.value, 10);
  if (!Number.isFinite(v)) v = lo;
  v = Math.min(hi, Math.max(lo, v));
  input.value = v;
  return v;
}

function drawEditor(node, m, prefix, what) {
  node.replaceChildren();
  node.style.gridTemplateColumns = `repeat(${m[0].length}, var(--cell))`;
  m.forEach((row, i) =>
    row.forEach((v, j) => {
      const inp = el('input', {
        type: 'number',
        step: 'any',
        value: String(v),
        testid: `${prefix}-val-${i}-${j}`,
        'aria-label': W.dims === 1 ? `${what} ${j}` : `${what} row ${i} column ${j}`,
      });
      inp.addEventListener('change', () => {
        const x = Number(inp.value);
        m[i][j] = Number.isFinite(x) && inp.value.trim() !== '' ? x : 0;
        inp.value = String(m[i][j]);
        if (prefix === 'kernel') $('#kernel-preset').value = 'custom';
        schedule();
      });
      node.append(inp);
    }),
  );
}

function drawEditors() {
  drawEditor($('#input-editor'), W.input, 'input', 'input');
  drawEditor($('#kernel-editor'), W.kernel, 'kernel', 'weight');
}

const matStr = (m) => m.map((r) => r.join(',')).join(';');

function request() {
  const op = $('#op').value;
  const kind = $('#padding-kind').value;
  const req = {
    input: matStr(W.input),
    stride: $('#stride').value,
    dilation: $('#dilation').value,
    padding: kind === 'explicit' ? $('#padding').value : kind,
  };
  if (op === 'conv') {
    req.weight = matStr(W.kernel);
    req['padding-mode'] = $('#padding-mode').value;
    if ($('#flip').checked) req.flip = true;
  } else {
    req.pool = op;
    req.kernel = $('#pool-size').value;
  }
  return req;
}

function schedule() {
  W.seq++; // a response still in flight is for older values: it must not land
  document.body.dataset.pending = '1';
  clearTimeout(W.debounce);
  W.debounce = setTimeout(compute, 120);
}

async function compute() {
  const seq = ++W.seq;
  document.body.dataset.pending = '1';
  let data = null;
  let err = null;
  try {
    data = await post('/api/explain', request());
  } catch (e) {
    err = e.message;
  }
  if (seq !== W.seq) return; // a newer request is on its way
  showError($('#window-error'), err);
  stopPlaying();
  W.data = data;
  W.cur = 0;
  W.selected = null;
  render();
  document.body.dataset.pending = '0';
}

// The page works in 2-D coordinates; a 1-D problem is one row.
const rc = (a) => (a.length === 1 ? [0, a[0]] : [a[0], a[1]]);

function geometry(d) {
  const sp = d.padded_shape;
  const [ph, pw] = sp.length === 1 ? [1, sp[0]] : sp;
  const ins = d.input_shape.slice(2);
  const [ih, iw] = ins.length === 1 ? [1, ins[0]] : ins;
  const [bh, bw] = rc(d.pad_begin);
  const outs = d.output_shape.slice(2);
  const [oh, ow] = outs.length === 1 ? [1, outs[0]] : outs;
  return { ph, pw, ih, iw, bh, bw, oh, ow };
}

function render() {
  const d = W.data;
  const padded = $('#padded-grid');
  const out = $('#output-grid');
  if (!d) {
    for (const n of [padded, out, $('#products'), $('#shape-formula')]) n.replaceChildren();
    for (const n of [$('#sum'), $('#step-text'), $('#rf-text')]) n.textContent = '';
    return;
  }
  const g = geometry(d);
  const step = d.steps[W.cur];
  const win = new Map();
  if (step) for (const t of step.terms) win.set(rc(t.padded).join(','), t);
  const rf = new Set();
  const sel = W.selected !== null ? d.steps[W.selected] : null;
  if (sel) for (const t of sel.terms) rf.add(rc(t.padded).join(','));

  padded.replaceChildren();
  padded.style.gridTemplateColumns = `repeat(${g.pw}, var(--cell))`;
  for (let i = 0; i < g.ph; i++) {
    for (let j = 0; j < g.pw; j++) {
      const inside = d.padded_is_pad
        ? !d.padded_is_pad[i * g.pw + j]
        : i >= g.bh && i < g.bh + g.ih && j >= g.bw && j < g.bw + g.iw;
      const key = `${i},${j}`;
      const cls = ['cell'];
      if (!inside) cls.push('pad');
      const t = win.get(key);
      if (t) cls.push('win');
      if (rf.has(key)) cls.push('rf');
      const c = el('div', { class: cls.join(' '), testid: `in-cell-${i}-${j}` }, fmtx(d.padded[i * g.pw + j]));
      if (t && t.w !== null && t.w !== undefined) c.append(el('span', { class: 'tap', 'aria-hidden': 'true' }, `×${fmt(t.w)}`));
      padded.append(c);
    }
  }

  // Which step fills which output cell.
  const stepOf = new Map();
  d.steps.forEach((s, k) => stepOf.set(rc(s.out).join(','), k));
  out.replaceChildren();
  out.style.gridTemplateColumns = `repeat(${g.ow}, var(--cell))`;
  for (let i = 0; i < g.oh; i++) {
    for (let j = 0; j < g.ow; j++) {
      const k = stepOf.get(`${i},${j}`);
      const done = k !== undefined && k <= W.cur;
      const cls = ['cell', 'out'];
      if (done) cls.push('filled');
      if (k === W.cur) cls.push('current');
      if (k !== undefined && k === W.selected) cls.push('selected');
      const b = el('button', {
        type: 'button',
        class: cls.join(' '),
        testid: `out-cell-${i}-${j}`,
        'aria-label': `output ${g.oh === 1 ? j : `(${i}, ${j})`}${done ? ` = ${fmt(d.output[i * g.ow + j])}` : ''}: show its receptive field`,
      }, done ? fmt(d.output[i * g.ow + j]) : '');
      b.addEventListener('click', () => {
        W.selected = k === undefined || W.selected === k ? null : k;
        render();
      });
      out.append(b);
    }
  }

  const products = $('#products');
  products.replaceChildren();
  if (step) {
    const pool = d.op !== 'conv';
    step.terms.forEach((t, n) => {
      const where = t.source ? `x[${t.source.join(',')}]` : 'pad';
      const max = d.op === 'max-pool' && step.argmax === n;
      const text = pool ? `${where} = ${fmtx(t.x)}${max ? '  ← max' : ''}` : `${fmt(t.x)} · ${fmt(t.w)} = ${fmt(t.product)}`;
      products.append(el('li', { testid: `product-${n}`, title: where, class: max ? 'argmax' : '' }, text));
    });
    const o = rc(step.out);
    const label = g.oh === 1 ? `${o[1]}` : `(${o[0]}, ${o[1]})`;
    let sum;
    if (d.op === 'conv') sum = `sum = ${fmt(step.sum)}${step.bias !== null && step.bias !== undefined ? ` + bias ${fmt(step.bias)}` : ''} → output ${label} = ${fmt(step.value)}`;
    else if (d.op === 'max-pool') sum = `max → output ${label} = ${fmtx(step.value)}`;
    else sum = `sum ${fmt(step.sum)} / ${fmt(step.divisor)} → output ${label} = ${fmt(step.value)}`;
    $('#sum').textContent = sum;
    $('#step-text').textContent = `Step ${W.cur + 1} of ${d.steps.length}: output ${label} = ${fmt(step.value)}`;
  }
  if (sel) {
    const o = rc(sel.out);
    const inside = sel.terms.filter((t) => t.source).length;
    $('#rf-text').textContent = `Output ${g.oh === 1 ? o[1] : `(${o[0]}, ${o[1]})`} reads ${sel.terms.length} cells (${inside} from the input, ${sel.terms.length - inside} padding).`;
  } else $('#rf-text').textContent = '';

  const names = d.formula.length === 1 ? ['length'] : ['rows', 'columns'];
  $('#shape-formula').replaceChildren(
    ...d.formula.map((f, a) => {
      const p = el('p');
      p.append(el('span', { class: 'axis' }, `${names[a] || `axis ${a}`}: `), el('span', { testid: `formula-${a}` }, f.text));
      return p;
    }),
    el('p', { testid: 'output-shape' }, `output shape [${d.output_shape.join(', ')}]`),
  );
}

function go(k) {
  if (!W.data || W.data.steps.length === 0) return;
  W.cur = Math.max(0, Math.min(W.data.steps.length - 1, k));
  render();
}

function stopPlaying() {
  if (W.timer !== null) clearInterval(W.timer);
  W.timer = null;
  const b = $('#play');
  b.setAttribute('aria-pressed', 'false');
  b.textContent = '▶ Play';
  b.setAttribute('aria-label', 'Play (space)');
}

function togglePlay() {
  if (W.timer !== null) return stopPlaying();
  if (!W.data || W.data.steps.length === 0) return;
  if (W.cur >= W.data.steps.length - 1) go(0);
  const b = $('#play');
  b.setAttribute('aria-pressed', 'true');
  b.textContent = '⏸ Pause';
  b.setAttribute('aria-label', 'Pause (space)');
  W.timer = setInterval(() => {
    if (W.cur >= W.data.steps.length - 1) stopPlaying();
    else go(W.cur + 1);
  }, 700);
}

$('#play').addEventListener('click', togglePlay);
$('#step-next').addEventListener('click', () => go(W.cur + 1));
$('#step-prev').addEventListener('click', () => go(W.cur - 1));
$('#step-first').addEventListener('click', () => go(0));
$('#step-last').addEventListener('click', () => go(Infinity));

document.addEventListener('keydown', (ev) => {
  if ($('#panel-window').hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const t = ev.target;
  if (t.closest && t.closest('input, select, textarea, [role=tab]')) return;
  if (ev.key === ' ' && t.tagName === 'BUTTON') return; // space presses the focused button
  if (ev.key === ' ') togglePlay();
  else if (ev.key === 'ArrowRight') go(W.cur + 1);
  else if (ev.key === 'ArrowLeft') go(W.cur - 1);
  else return;
  ev.preventDefault();
});

function syncVisibility() {
  const pool = $('#op').value !== 'conv';
  document.body.classList.toggle('pooling', pool);
  $('#padding').disabled = $('#padding-kind').value !== 'explicit';
}

$('#dims').addEventListener('change', () => {
  defaults(Number($('#dims').value));
  drawEditors();
  schedule();
});
$('#in-rows').addEventListener('change', () => {
  W.input = resize(W.input, clampInt($('#in-rows'), 1, 16), W.input[0].length);
  drawEditors();
  schedule();
});
$('#in-cols').addEventListener('change', () => {
  W.input = resize(W.input, W.input.length, clampInt($('#in-cols'), 1, 16));
  drawEditors();
  schedule();
});
$('#k-rows').addEventListener('change', () => {
  W.kernel = resize(W.kernel, clampInt($('#k-rows'), 1, 7), W.kernel[0].length);
  $('#kernel-preset').value = 'custom';
  drawEditors();
  schedule();
});
$('#k-cols').addEventListener('change', () => {
  W.kernel = resize(W.kernel, W.kernel.length, clampInt($('#k-cols'), 1, 7));
  $('#kernel-preset').value = 'custom';
  drawEditors();
  schedule();
});
$('#kernel-preset').addEventListener('change', () => {
  const p = (W.dims === 1 ? PRESETS_1D : PRESETS_2D)[$('#kernel-preset').value];
  if (!p) return;
  W.kernel = p.map((r) => r.slice());
  $('#k-rows').value = W.kernel.length;
  $('#k-cols').value = W.kernel[0].length;
  drawEditors();
  schedule();
});
$('#random-input').addEventListener('click', () => {
  W.input = W.input.map((r) => r.map(() => Math.floor(Math.random() * 9) - 3));
  drawEditors();
  schedule();
});
for (const id of ['#op', '#padding-kind', '#padding-mode', '#flip']) {
  $(id).addEventListener('change', () => {
    syncVisibility();
    schedule();
  });
}
for (const id of ['#stride', '#dilation', '#padding', '#pool-size']) {
  $(id).addEventListener('input', schedule);
}
$('#window-form').addEventListener('submit', (ev) => ev.preventDefault());

// ---------------------------------------------------------------- image

const imageTab = {
  started: false,
  upload: null, // data URL of the uploaded file, or null for the embedded image
  seq: 0,
  async activate() {
    if (this.started) return;
    this.started = true;
    try {
      const resp = await fetch('/api/kernels');
      const k = await resp.json();
      $('#img-kernel').replaceChildren(...k.names.map((n) => el('option', { value: n }, n)));
      $('#img-kernel').value = 'sobel';
    } catch (e) {
      showError($('#img-error'), e.message);
    }
    this.apply();
  },
  async apply() {
    const seq = ++this.seq;
    document.body.dataset.imagePending = '1';
    const spec = $('#img-spec').value.trim() || $('#img-kernel').value;
    const body = { kernel: spec, border: $('#img-border').value, stride: $('#img-stride').value };
    if (this.upload) body.image = this.upload;
    $('#img-status').textContent = `Filtering with ${spec}…`;
    try {
      const r = await post('/api/filter', body);
      if (seq !== this.seq) return;
      showError($('#img-error'), null);
      const out = $('#img-out');
      out.src = `data:image/png;base64,${r.png}`;
      out.dataset.width = r.width;
      out.dataset.height = r.height;
      $('#img-in-size').textContent = `Input ${r.input_width} × ${r.input_height}`;
      $('#img-out-size').textContent = `Output ${r.width} × ${r.height} (${spec}, range ${r.range})`;
      const box = $('#img-kernel-matrix');
      box.replaceChildren();
      for (const k of r.kernels) {
        const t = el('table', { class: 'matrix' });
        t.append(el('caption', {}, k.name));
        for (const row of k.matrix) {
          const tr = el('tr');
          for (const v of row) tr.append(el('td', {}, fmt(v)));
          t.append(tr);
        }
        box.append(t);
      }
      $('#img-status').textContent = `Filtered with ${spec}: ${r.width} × ${r.height}.`;
    } catch (e) {
      if (seq !== this.seq) return;
      showError($('#img-error'), e.message);
      $('#img-status').textContent = '';
    }
    document.body.dataset.imagePending = '0';
  },
};
$('#img-file').addEventListener('change', () => {
  const f = $('#img-file').files[0];
  if (!f) return;
  const reader = new FileReader();
  reader.onload = () => {
    imageTab.upload = reader.result;
    $('#img-in').src = reader.result;
    imageTab.apply();
  };
  reader.onerror = () => showError($('#img-error'), `cannot read ${f.name}`);
  reader.readAsDataURL(f);
});
$('#img-default').addEventListener('click', () => {
  imageTab.upload = null;
  $('#img-file').value = '';
  $('#img-in').src = '/image/default.png';
  imageTab.apply();
});
for (const id of ['#img-kernel', '#img-border']) $(id).addEventListener('change', () => {
  if (id === '#img-kernel') $('#img-spec').value = '';
  imageTab.apply();
});
$('#img-apply').addEventListener('click', () => imageTab.apply());
$('#image-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  imageTab.apply();
});

// ---------------------------------------------------------------- layer stack

const stackTab = {
  started: false,
  seq: 0,
  activate() {
    if (this.started) return;
    this.started = true;
    this.run();
  },
  async run() {
    const seq = ++this.seq;
    document.body.dataset.stackPending = '1';
    const model = $('#stack-model').value;
    const body = model ? { model } : { input: $('#stack-input').value, layers: $('#stack-layers').value };
    $('#stack-input').disabled = !!model;
    $('#stack-layers').disabled = !!model;
    try {
      const r = await post('/api/shape', body);
      if (seq !== this.seq) return;
      showError($('#stack-error'), null);
      this.draw(r);
    } catch (e) {
      if (seq !== this.seq) return;
      showError($('#stack-error'), e.message);
      $('#stack-table tbody').replaceChildren();
      $('#stack-table tfoot').replaceChildren();
    }
    document.body.dataset.stackPending = '0';
  },
  draw(r) {
    const n = (v) => (typeof v === 'number' ? v.toLocaleString('en-US') : String(v ?? ''));
    const dims = (v) => (Array.isArray(v) ? v.join('×') : '');
    const list = (v) => (Array.isArray(v) ? v.map(fmt).join(', ') : '');
    const row = (cells, testid) => {
      const tr = el('tr', testid ? { testid } : {});
      for (const [text, attrs] of cells) tr.append(el('td', attrs || {}, text));
      return tr;
    };
    const body = $('#stack-table tbody');
    body.replaceChildren(
      el('tr', { class: 'input-row' }, undefined),
    );
    body.firstChild.append(el('td', {}, '0'), el('td', {}, 'input'), el('td', {}, dims(r.input)), el('td'), el('td'), el('td'), el('td'), el('td'));
    for (const l of r.layers) {
      body.append(row([
        [String(l.index)],
        [l.text, { class: 'layer-text' }],
        [dims(l.output)],
        [n(l.params), { class: 'num', 'data-value': String(l.params) }],
        [n(l.macs), { class: 'num', 'data-value': String(l.macs) }],
        [dims(l.rf)],
        [dims(l.jump)],
        [list(l.start)],
      ], `layer-${l.index}`));
    }
    const t = r.total;
    $('#stack-table tfoot').replaceChildren(row([
      [''],
      ['total'],
      [dims(t.output)],
      [n(t.params), { class: 'num', testid: 'total-params', 'data-value': String(t.params) }],
      [n(t.macs), { class: 'num', testid: 'total-macs', 'data-value': String(t.macs) }],
      [dims(t.rf)],
      [dims(t.jump)],
      [list(t.start)],
    ], 'total'));
  },
};
$('#stack-model').addEventListener('change', () => stackTab.run());
$('#stack-run').addEventListener('click', () => stackTab.run());
$('#stack-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  stackTab.run();
});

// ---------------------------------------------------------------- start

defaults(2);
drawEditors();
syncVisibility();
compute();
