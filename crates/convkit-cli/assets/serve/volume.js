// convkit serve, Volume tab: convolution over several input channels with several filters.
// Every number drawn here comes from POST /api/volume (the core's explanation, per-channel sums
// and parameter count); this file keeps the editors' values and draws the answer.
'use strict';

const EDGES = {
  'sobel-x': [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
  'sobel-y': [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
  laplacian: [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
  'vertical-edge': [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
};

const V = {
  input: [], // [C][H][W] typed values
  filters: [], // [K][C/groups][k][k]
  bias: [], // [K]
  data: null, // the last /api/volume answer
  cur: 0,
  timer: null,
  seq: 0,
  debounce: null,
  started: false,
};

const vnum = (id) => Number($(id).value);
const vgroups = () => {
  const g = $('#vol-groups').value;
  return g === 'dw' ? vnum('#vol-c') : Number(g);
};
const zeros = (r, c) => Array.from({ length: r }, () => new Array(c).fill(0));

function volDefaults() {
  V.input = [0, 1, 2].map((c) => Array.from({ length: 5 }, (_, i) => [0, 1, 2, 3, 4].map((j) => ((i * 3 + j * 2 + c * 5) % 7) - 2)));
  V.filters = [
    [[[1, 0, -1], [1, 0, -1], [1, 0, -1]], [[0, 1, 0], [1, -2, 1], [0, 1, 0]], [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]],
    [[[0, 0, 0], [0, 1, 0], [0, 0, 0]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]],
  ];
  V.bias = [1, -2];
}

/** Resize the editors' arrays to the controls (keeping what fits). */
function volShape() {
  const C = vnum('#vol-c');
  const H = vnum('#vol-h');
  const Wd = vnum('#vol-w');
  const K = vnum('#vol-k');
  const k = vnum('#vol-ks');
  const per = C / vgroups();
  V.input = Array.from({ length: C }, (_, c) => resize(V.input[c] || zeros(H, Wd), H, Wd));
  V.filters = Array.from({ length: K }, (_, f) =>
    Array.from({ length: per }, (_, c) => resize((V.filters[f] && V.filters[f][c]) || zeros(k, k), k, k)));
  V.bias = Array.from({ length: K }, (_, f) => V.bias[f] || 0);
}

function fillGroups() {
  const C = vnum('#vol-c');
  const K = vnum('#vol-k');
  const sel = $('#vol-groups');
  const old = sel.value;
  const opts = [];
  for (let g = 1; g <= C; g++) if (C % g === 0 && K % g === 0) opts.push(el('option', { value: String(g) }, g === 1 ? '1 (every filter sees every channel)' : String(g)));
  if (K % C === 0 && C > 1) opts.push(el('option', { value: 'dw' }, `depthwise (groups = C = ${C})`));
  sel.replaceChildren(...opts);
  sel.value = [...sel.options].some((o) => o.value === old) ? old : '1';
}

function gridEditor(m, testid, label, onChange) {
  const node = el('div', { class: 'grid editor' });
  node.style.gridTemplateColumns = `repeat(${m[0].length}, var(--cell))`;
  m.forEach((row, i) => row.forEach((v, j) => {
    const inp = el('input', { type: 'number', step: 'any', value: String(v), testid: `${testid}-${i}-${j}`, 'aria-label': `${label} row ${i} column ${j}` });
    inp.addEventListener('change', () => {
      const x = Number(inp.value);
      m[i][j] = Number.isFinite(x) && inp.value.trim() !== '' ? x : 0;
      inp.value = String(m[i][j]);
      onChange();
    });
    node.append(inp);
  }));
  return node;
}

function drawVolEditors() {
  const photo = $('#vol-source').value === 'photo';
  document.body.classList.toggle('vol-photo', photo);
  const ie = $('#vol-input-editor');
  ie.replaceChildren();
  if (!photo) {
    V.input.forEach((m, c) => {
      const box = el('div', { class: 'vol-slice' });
      box.append(el('h3', {}, `channel ${c}`), gridEditor(m, `vol-in-${c}`, `input channel ${c}`, volSchedule));
      ie.append(box);
    });
  }
  const fe = $('#vol-filter-editor');
  fe.replaceChildren();
  const g = vgroups();
  const per = vnum('#vol-c') / g;
  const K = vnum('#vol-k');
  V.filters.forEach((f, k) => {
    const box = el('div', { class: 'vol-filter' });
    const first = Math.floor(k / (K / g)) * per;
    box.append(el('h3', {}, `filter ${k}`));
    const row = el('div', { class: 'vol-row' });
    f.forEach((m, c) => {
      const s = el('div', { class: 'vol-slice' });
      s.append(el('span', { class: 'hint' }, `channel ${first + c}`), gridEditor(m, `vol-w-${k}-${c}`, `filter ${k} channel ${first + c}`, () => {
        $('#vol-preset').value = 'custom';
        volSchedule();
      }));
      row.append(s);
    });
    const b = el('input', { type: 'number', step: 'any', value: String(V.bias[k]), testid: `vol-b-${k}`, 'aria-label': `filter ${k} bias` });
    b.addEventListener('change', () => {
      const x = Number(b.value);
      V.bias[k] = Number.isFinite(x) && b.value.trim() !== '' ? x : 0;
      b.value = String(V.bias[k]);
      volSchedule();
    });
    const bl = el('label', {}, 'bias ');
    bl.append(b);
    row.append(bl);
    box.append(row);
    fe.append(box);
  });
}

function volRequest() {
  const photo = $('#vol-source').value === 'photo';
  const req = {
    source: photo ? 'photo' : 'values',
    channels: vnum('#vol-c'),
    height: vnum('#vol-h'),
    width: vnum('#vol-w'),
    filters: vnum('#vol-k'),
    kernel: vnum('#vol-ks'),
    groups: vgroups(),
    weight: V.filters.flat(3),
    bias: V.bias.slice(),
    stride: $('#vol-stride').value,
    padding: $('#vol-padding').value,
  };
  if (photo) {
    req['crop-x'] = vnum('#vol-x');
    req['crop-y'] = vnum('#vol-y');
  } else req.input = V.input.flat(2);
  return req;
}

function volSchedule() {
  V.seq++; // a response still in flight is for older values: it must not land
  document.body.dataset.volPending = '1';
  clearTimeout(V.debounce);
  V.debounce = setTimeout(volCompute, 120);
}

async function volCompute() {
  const seq = ++V.seq;
  document.body.dataset.volPending = '1';
  let data = null;
  let err = null;
  try {
    data = await post('/api/volume', volRequest());
  } catch (e) {
    err = e.message;
  }
  if (seq !== V.seq) return;
  showError($('#vol-error'), err);
  volStop();
  V.data = data;
  V.cur = 0;
  volRender();
  document.body.dataset.volPending = '0';
}

function drawCrop() {
  const img = $('#vol-photo-img');
  const box = $('#vol-crop');
  const s = img.clientWidth / 128 || 2;
  box.style.left = `${vnum('#vol-x') * s}px`;
  box.style.top = `${vnum('#vol-y') * s}px`;
  box.style.width = `${vnum('#vol-w') * s}px`;
  box.style.height = `${vnum('#vol-h') * s}px`;
}

function volRender() {
  const d = V.data;
  const chans = $('#vol-channels');
  const outs = $('#vol-outputs');
  drawCrop();
  if (!d) {
    for (const n of [chans, outs, $('#vol-formula')]) n.replaceChildren();
    for (const n of [$('#vol-total'), $('#vol-step-text'), $('#vol-params')]) n.textContent = '';
    return;
  }
  const C = d.input_shape[1];
  const [ph, pw] = d.padded_shape;
  const [K, per, kh, kw] = d.weight_shape;
  const [oh, ow] = d.output_shape.slice(2);
  const step = d.steps[V.cur];
  const sums = d.channel_sums[V.cur] || [];
  const byC = new Map();
  step.terms.forEach((t) => {
    if (!byC.has(t.c)) byC.set(t.c, []);
    byC.get(t.c).push(t);
  });
  chans.replaceChildren();
  for (let c = 0; c < C; c++) {
    const terms = byC.get(c);
    const row = el('div', { class: terms ? 'vol-chan' : 'vol-chan unread', testid: `vol-chan-${c}` });
    row.append(el('h3', {}, `${d.channel_names[c]}${terms ? '' : ` — not read by filter ${step.k} (groups = ${d.groups})`}`));
    const grid = el('div', { class: 'grid' });
    grid.style.gridTemplateColumns = `repeat(${pw}, var(--cell-s))`;
    const win = new Set((terms || []).map((t) => t.padded.join(',')));
    for (let i = 0; i < ph; i++) {
      for (let j = 0; j < pw; j++) {
        const cls = ['cell', 'small'];
        if (d.padded_is_pad[c * ph * pw + i * pw + j]) cls.push('pad');
        if (win.has(`${i},${j}`)) cls.push('win');
        grid.append(el('div', { class: cls.join(' '), testid: `vol-in-cell-${c}-${i}-${j}` }, fmt(d.padded[c * ph * pw + i * pw + j])));
      }
    }
    row.append(grid);
    if (terms) {
      const wgrid = el('div', { class: 'grid weights' });
      wgrid.style.gridTemplateColumns = `repeat(${kw}, var(--cell-s))`;
      const wm = zeros(kh, kw);
      for (const t of terms) wm[t.weight_tap[0]][t.weight_tap[1]] = t.w;
      wm.flat().forEach((w) => wgrid.append(el('div', { class: 'cell small w' }, fmt(w))));
      row.append(el('span', { class: 'times' }, '⊙'), wgrid);
      const ol = el('ol', { class: 'vol-products' });
      terms.forEach((t, n) => ol.append(el('li', { testid: `vol-product-${c}-${n}` }, `${fmt(t.x)} · ${fmt(t.w)} = ${fmt(t.product)}`)));
      row.append(ol);
      const s = sums.find((x) => x.c === c);
      const sb = el('div', { class: 'vol-chsum' });
      sb.append(el('div', {}, 'channel sum '), el('b', { testid: `vol-chsum-${c}` }, fmt(s.sum)));
      sb.append(el('div', {}, 'running total '), el('b', { testid: `vol-running-${c}` }, fmt(s.running)));
      row.append(sb);
    }
    chans.append(row);
  }
  const o = step.out;
  const parts = sums.map((s) => fmt(s.sum)).join(' + ');
  const total = $('#vol-total');
  total.replaceChildren(
    el('span', {}, `Σ over channels: ${parts} = `), el('b', { testid: 'vol-sum' }, fmt(step.sum)),
    el('span', {}, '; + bias '), el('b', { testid: 'vol-bias' }, fmt(step.bias)),
    el('span', {}, ` = output [filter ${step.k}, (${o[0]}, ${o[1]})] = `), el('b', { testid: 'vol-value' }, fmt(step.value)),
  );
  $('#vol-step-text').textContent = `Step ${V.cur + 1} of ${d.steps.length}: filter ${step.k}, output (${o[0]}, ${o[1]}) = ${fmt(step.value)}`;

  const stepOf = new Map();
  d.steps.forEach((s, n) => stepOf.set(`${s.k},${s.out[0]},${s.out[1]}`, n));
  outs.replaceChildren();
  for (let k = 0; k < K; k++) {
    const box = el('div', { class: 'vol-map', testid: `vol-map-${k}` });
    box.append(el('h3', {}, `map ${k} (filter ${k})`));
    const grid = el('div', { class: 'grid' });
    grid.style.gridTemplateColumns = `repeat(${ow}, var(--cell-s))`;
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const n = stepOf.get(`${k},${i},${j}`);
        const done = n !== undefined && n <= V.cur;
        const cls = ['cell', 'small', 'out'];
        if (done) cls.push('filled');
        if (n === V.cur) cls.push('current');
        const v = d.output[(k * oh + i) * ow + j];
        const b = el('button', { type: 'button', class: cls.join(' '), testid: `vol-out-${k}-${i}-${j}`, 'aria-label': `map ${k} output (${i}, ${j})${done ? ` = ${fmt(v)}` : ''}: go to this step` }, done ? fmt(v) : '');
        b.addEventListener('click', () => volGo(n));
        grid.append(b);
      }
    }
    box.append(grid);
    outs.append(box);
  }
  const names = ['rows', 'columns'];
  $('#vol-formula').replaceChildren(
    ...d.formula.map((f, a) => {
      const p = el('p');
      p.append(el('span', { class: 'axis' }, `${names[a]}: `), el('span', { testid: `vol-formula-${a}` }, f.text));
      return p;
    }),
    el('p', { testid: 'vol-output-shape' }, `output shape [${d.output_shape.join(', ')}]: N × K × rows × columns, K = ${K} filters`),
  );
  $('#vol-params').replaceChildren(el('span', { testid: 'vol-params' }, d.params.text), el('span', { class: 'hint' }, ` (${d.params.weights} weights + ${K} biases; each filter is ${per} × ${kh} × ${kw})`));
}

function volGo(n) {
  if (!V.data || V.data.steps.length === 0 || n === undefined) return;
  V.cur = Math.max(0, Math.min(V.data.steps.length - 1, n));
  volRender();
}

function volStop() {
  if (V.timer !== null) clearInterval(V.timer);
  V.timer = null;
  const b = $('#vol-play');
  b.setAttribute('aria-pressed', 'false');
  b.textContent = '▶ Play';
}

function volPlay() {
  if (V.timer !== null) return volStop();
  if (!V.data || V.data.steps.length === 0) return;
  if (V.cur >= V.data.steps.length - 1) volGo(0);
  const b = $('#vol-play');
  b.setAttribute('aria-pressed', 'true');
  b.textContent = '⏸ Pause';
  V.timer = setInterval(() => {
    if (V.cur >= V.data.steps.length - 1) volStop();
    else volGo(V.cur + 1);
  }, 500);
}

function volPreset(name) {
  const C = vnum('#vol-c');
  const k = 3;
  if (name === 'custom') return;
  if (name === 'rgb-edge') {
    $('#vol-c').value = 3;
    $('#vol-source').value = 'photo';
    $('#vol-k').value = 2;
    $('#vol-ks').value = k;
    fillGroups();
    $('#vol-groups').value = '1';
    const c = vnum('#vol-c');
    V.filters = [EDGES['sobel-x'], EDGES['sobel-y']].map((e) => Array.from({ length: c }, () => e.map((r) => r.slice())));
    V.bias = [0, 0];
  } else if (name === 'edge-per-channel') {
    const kinds = ['sobel-x', 'sobel-y', 'laplacian', 'vertical-edge'];
    $('#vol-k').value = C;
    $('#vol-ks').value = k;
    fillGroups();
    $('#vol-groups').value = C > 1 ? 'dw' : '1';
    V.filters = Array.from({ length: C }, (_, f) => [EDGES[kinds[f]].map((r) => r.slice())]);
    V.bias = new Array(C).fill(0);
  } else if (name === 'random') {
    volShape();
    V.filters = V.filters.map((f) => f.map((m) => m.map((r) => r.map(() => Math.floor(Math.random() * 5) - 2))));
    V.bias = V.bias.map(() => Math.floor(Math.random() * 5) - 2);
  }
  volShape();
  drawVolEditors();
  volSchedule();
}

function volControlsChanged() {
  clampInt($('#vol-c'), 1, 4);
  clampInt($('#vol-k'), 1, 4);
  clampInt($('#vol-ks'), 1, 5);
  clampInt($('#vol-h'), 1, 8);
  clampInt($('#vol-w'), 1, 8);
  clampInt($('#vol-x'), 0, 128 - vnum('#vol-w'));
  clampInt($('#vol-y'), 0, 128 - vnum('#vol-h'));
  if ($('#vol-source').value === 'photo' && vnum('#vol-c') > 3) $('#vol-c').value = 3;
  fillGroups();
  volShape();
  drawVolEditors();
  volSchedule();
}

for (const id of ['#vol-source', '#vol-c', '#vol-h', '#vol-w', '#vol-k', '#vol-ks', '#vol-groups']) {
  $(id).addEventListener('change', volControlsChanged);
}
for (const id of ['#vol-x', '#vol-y']) $(id).addEventListener('change', volControlsChanged);
for (const id of ['#vol-stride', '#vol-padding']) $(id).addEventListener('input', volSchedule);
$('#vol-preset').addEventListener('change', () => volPreset($('#vol-preset').value));
$('#vol-random').addEventListener('click', () => {
  V.input = V.input.map((m) => m.map((r) => r.map(() => Math.floor(Math.random() * 9) - 3)));
  drawVolEditors();
  volSchedule();
});
$('#vol-play').addEventListener('click', volPlay);
$('#vol-next').addEventListener('click', () => volGo(V.cur + 1));
$('#vol-prev').addEventListener('click', () => volGo(V.cur - 1));
$('#vol-first').addEventListener('click', () => volGo(0));
$('#vol-last').addEventListener('click', () => volGo(Infinity));
$('#vol-form').addEventListener('submit', (ev) => ev.preventDefault());
$('#vol-photo-img').addEventListener('load', drawCrop);

extraTabs.volume = {
  activate() {
    if (V.started) return;
    V.started = true;
    $('#vol-photo-img').src = '/image/photo.png';
    volDefaults();
    fillGroups();
    volShape();
    drawVolEditors();
    volCompute();
  },
  deactivate: volStop,
};
