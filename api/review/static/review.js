// skintrouble review page: claim a case, label lesions with the product's taxonomy on a canvas, grade, submit.
// Vanilla JS, no dependencies. Boxes are kept in photo pixels; the view maps them to the screen.
// The expert's judgement comes first: the model's grade is shown but never chosen for them, unsaved edits are
// never dropped silently, every edit can be undone, and the pre-labels can be hidden.
"use strict";

(() => {
  const KEY_STORAGE = "skintrouble.reviewKey";
  const HANDLE = 7; // corner handle half-size, screen px
  const MIN_BOX = 3; // smallest box side kept, photo px
  const GUARD_MS = 5000; // a guarded key must be pressed again within this time
  const HISTORY_LIMIT = 200;
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");

  const state = {
    key: sessionStorage.getItem(KEY_STORAGE) || "",
    me: null, // {reviewer_id, name, role} once the key is checked
    taxonomy: [], // [{name, display, category, model_class}]
    kase: null, // the claimed case as the API returned it
    image: null, // the photo as decoded
    shown: null, // the photo after brightness/contrast/gamma (a canvas), or the image itself
    imageUrl: null,
    heatmap: null, // decoded heatmap overlay (on demand)
    boxes: [], // {label, box: [x1, y1, x2, y2], conf: model confidence or null, origin: "model"|"reviewer", edited}
    grade: null, // the reviewer's grade: never pre-selected
    selected: -1,
    undo: [],
    redo: [],
    dirty: false, // anything the reviewer did that a reload would lose
    lastLabel: null,
    adjust: { brightness: 0, contrast: 0, gamma: 1 },
    layers: { prelabels: true, confidences: true, heatmap: false },
    guard: null, // {action, until}
    view: { scale: 1, ox: 0, oy: 0 },
    drag: null,
    pointers: new Map(), // active pointers (touch pinch)
    pinch: null,
    spaceDown: false,
    busy: false,
    drawnTags: [],
  };

  // ---------- API ----------
  async function api(method, path, body, key = state.key) {
    const headers = { "X-API-Key": key };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      let code = null;
      try {
        const err = (await response.json()).error;
        message = `${err.message} (${err.code})`;
        code = err.code;
      } catch (_) { /* not JSON */ }
      const error = new Error(message);
      error.status = response.status;
      error.code = code;
      throw error;
    }
    return response;
  }

  function setStatus(text, isError = false) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  async function guarded(action) {
    if (state.busy) return;
    state.busy = true;
    try {
      await action();
    } catch (err) {
      setStatus(err.message, true);
    } finally {
      state.busy = false;
      renderControls();
    }
  }

  // ---------- confirmation of actions that would lose work ----------
  // The first press arms the action and says what would be lost; the same key or button again within a few
  // seconds does it; Esc or any edit cancels.
  function confirmTwice(name, message, action) {
    const now = Date.now();
    if (state.guard && state.guard.name === name && now < state.guard.until) {
      clearGuard();
      action();
      return;
    }
    state.guard = { name, until: now + GUARD_MS };
    const guard = $("guard");
    guard.textContent = message;
    guard.hidden = false;
    setStatus(message, true);
  }

  function clearGuard() {
    state.guard = null;
    $("guard").hidden = true;
  }

  function unlessDirty(name, what, action) {
    if (!state.kase || !state.dirty) {
      clearGuard();
      action();
      return;
    }
    confirmTwice(name, `Unsaved edits on this case: ${what} again to discard them, Esc to keep editing.`, action);
  }

  window.addEventListener("beforeunload", (event) => {
    if (state.kase && state.dirty) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // ---------- login: the key is checked before the page says "logged in" ----------
  function renderLogin() {
    document.body.dataset.state = state.me ? (state.kase ? "ready" : "logged-in") : "logged-out";
    $("who").textContent = state.me ? `logged in as ${state.me.name} (key ${state.key.slice(0, 6)}…)` : "not logged in";
    $("key").value = "";
  }

  async function checkKey(key) {
    try {
      const me = await (await api("GET", "/v1/review/me", undefined, key)).json();
      const taxonomy = await (await api("GET", "/v1/review/taxonomy", undefined, key)).json();
      return { me, taxonomy: taxonomy.labels };
    } catch (err) {
      if (err.status === 401) throw new Error("That API key is not valid: check it and try again.");
      if (err.status === 403) throw new Error("That key is not a dermatologist key: the review needs one.");
      throw err;
    }
  }

  async function logIn(key) {
    setStatus("Checking the key…");
    const { me, taxonomy } = await checkKey(key);
    Object.assign(state, { key, me, taxonomy });
    sessionStorage.setItem(KEY_STORAGE, key);
    renderLogin();
    renderControls();
    setStatus(`Logged in as ${me.name}. Press n for the next case.`);
    canvas.focus();
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (!key) return;
    guarded(async () => {
      try {
        await logIn(key);
      } catch (err) {
        state.me = null;
        sessionStorage.removeItem(KEY_STORAGE);
        renderLogin();
        throw err;
      }
    });
  });

  function logOut() {
    sessionStorage.removeItem(KEY_STORAGE);
    Object.assign(state, { key: "", me: null });
    clearCase();
    renderLogin();
    setStatus("Logged out.");
  }

  $("logout").addEventListener("click", () => unlessDirty("logout", "press Log out", logOut));

  // ---------- case lifecycle ----------
  function clearCase() {
    if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
    Object.assign(state, {
      kase: null, image: null, shown: null, imageUrl: null, heatmap: null, boxes: [], grade: null, selected: -1,
      undo: [], redo: [], dirty: false,
    });
    state.layers.heatmap = false;
    clearGuard();
    renderInfo();
    draw();
  }

  async function loadImage(url) {
    const blob = await (await api("GET", url)).blob();
    const objectUrl = URL.createObjectURL(blob);
    const image = new Image();
    image.src = objectUrl;
    await image.decode();
    return { image, objectUrl };
  }

  async function nextCase() {
    if (!state.me) throw new Error("Log in with your API key first.");
    setStatus("Claiming the next case…");
    const response = await api("POST", "/v1/review/claim");
    clearCase();
    if (response.status === 204) {
      renderLogin();
      setStatus("The queue is empty. Nothing to review.");
      return;
    }
    const kase = await response.json();
    const { image, objectUrl } = await loadImage(kase.photo_url);
    Object.assign(state, {
      kase,
      image,
      imageUrl: objectUrl,
      boxes: kase.findings.map((f) => ({
        label: f.label, box: f.box.slice(), conf: f.confidence, origin: "model", edited: false,
      })),
      grade: null, // shown, never chosen for the reviewer
      selected: -1,
    });
    applyAdjustments();
    fit();
    renderLogin();
    renderInfo();
    const expires = new Date(kase.lease_expires_at).toLocaleTimeString();
    setStatus(`Case ${kase.id.slice(0, 8)} claimed until ${expires}: ${kase.findings.length} pre-labels from the model. Choose your grade.`);
    canvas.focus();
  }

  function verdictOf() {
    const kase = state.kase;
    const boxesEdited = state.boxes.length !== kase.findings.length || state.boxes.some((b) => b.edited || b.origin !== "model");
    return boxesEdited || state.grade !== kase.model_grade ? "corrected" : "confirmed";
  }

  async function submit(verdict) {
    const kase = requireCase();
    const chosen = verdict || verdictOf();
    if (chosen !== "unusable_photo" && state.grade === null) {
      throw new Error("Choose your grade (0-3) first: the model's grade is shown, not chosen for you (a agrees with it).");
    }
    const body = {
      verdict: chosen,
      grade: chosen === "unusable_photo" ? null : state.grade,
      boxes: chosen === "unusable_photo" ? [] : state.boxes.map((b) => ({ label: b.label, box: b.box.map(round1) })),
    };
    const label = await (await api("POST", `/v1/review/cases/${kase.id}/labels`, body)).json();
    clearCase();
    renderLogin();
    const more = label.review_status === "done" ? "" : " (another review is needed)";
    setStatus(`Saved as ${label.verdict} with ${label.boxes.length} boxes${more}. Press n for the next case.`);
  }

  async function skip() {
    const kase = requireCase();
    await api("POST", `/v1/review/cases/${kase.id}/skip`);
    clearCase();
    renderLogin();
    setStatus("Skipped. Press n for the next case.");
  }

  function requireCase() {
    if (!state.kase) throw new Error("No case open: press n for the next case.");
    return state.kase;
  }

  const round1 = (v) => Math.round(v * 10) / 10;

  // ---------- editing, with undo and redo ----------
  const snapshot = () => ({ boxes: state.boxes.map((b) => ({ ...b, box: b.box.slice() })), grade: state.grade });

  function restore(snap) {
    state.boxes = snap.boxes.map((b) => ({ ...b, box: b.box.slice() }));
    state.grade = snap.grade;
    if (state.selected >= state.boxes.length) state.selected = -1;
  }

  // Call before changing boxes or grade: the state before the change becomes one undo step.
  function remember(before = snapshot()) {
    state.undo.push(before);
    if (state.undo.length > HISTORY_LIMIT) state.undo.shift();
    state.redo = [];
  }

  function changed() {
    state.dirty = true;
    clearGuard();
    draw();
    renderControls();
  }

  function undo() {
    if (!state.undo.length) return;
    state.redo.push(snapshot());
    restore(state.undo.pop());
    state.dirty = true;
    setStatus(`Undone (${state.undo.length} more).`);
    draw();
    renderControls();
  }

  function redo() {
    if (!state.redo.length) return;
    state.undo.push(snapshot());
    restore(state.redo.pop());
    state.dirty = true;
    setStatus("Redone.");
    draw();
    renderControls();
  }

  function setGrade(grade) {
    if (!state.kase || grade === state.grade) return;
    remember();
    state.grade = grade;
    changed();
  }

  function agreeWithModel() {
    if (!state.kase) return;
    if (state.kase.model_grade === null || state.kase.model_grade === undefined) {
      setStatus("The model gave no grade on this case: choose one.", true);
      return;
    }
    setGrade(state.kase.model_grade);
    setStatus(`Your grade: ${state.grade}, the same as the model's.`);
  }

  function deleteSelected() {
    if (state.selected < 0) return;
    remember();
    state.boxes.splice(state.selected, 1);
    state.selected = -1;
    changed();
  }

  function setClass(label) {
    if (state.selected < 0 || !label) return;
    const box = state.boxes[state.selected];
    if (box.label !== label) {
      remember();
      box.label = label;
      box.edited = true;
      state.lastLabel = label;
      changed();
    }
  }

  // ---------- the photo as shown: brightness, contrast, gamma through one lookup table ----------
  function lookupTable() {
    const { brightness, contrast, gamma } = state.adjust;
    const c = contrast / 100;
    const factor = c >= 0 ? 1 / Math.max(1e-3, 1 - c * 0.99) : 1 + c;
    const table = new Uint8ClampedArray(256);
    for (let v = 0; v < 256; v += 1) {
      let x = v / 255;
      x = Math.pow(x, 1 / gamma);
      x = (x - 0.5) * factor + 0.5 + brightness / 200;
      table[v] = Math.round(x * 255);
    }
    return table;
  }

  function applyAdjustments() {
    if (!state.image) return;
    const { brightness, contrast, gamma } = state.adjust;
    if (brightness === 0 && contrast === 0 && gamma === 1) {
      state.shown = state.image;
      draw();
      return;
    }
    const off = document.createElement("canvas");
    off.width = state.image.naturalWidth;
    off.height = state.image.naturalHeight;
    const offCtx = off.getContext("2d", { willReadFrequently: true });
    offCtx.drawImage(state.image, 0, 0);
    const pixels = offCtx.getImageData(0, 0, off.width, off.height);
    const data = pixels.data;
    const table = lookupTable();
    for (let i = 0; i < data.length; i += 4) {
      data[i] = table[data[i]];
      data[i + 1] = table[data[i + 1]];
      data[i + 2] = table[data[i + 2]];
    }
    offCtx.putImageData(pixels, 0, 0);
    state.shown = off;
    draw();
  }

  let adjustFrame = 0;
  function readSliders() {
    state.adjust = {
      brightness: Number($("brightness").value),
      contrast: Number($("contrast").value),
      gamma: Number($("gamma").value),
    };
    cancelAnimationFrame(adjustFrame);
    adjustFrame = requestAnimationFrame(applyAdjustments);
  }

  function resetImage() {
    $("brightness").value = "0";
    $("contrast").value = "0";
    $("gamma").value = "1";
    readSliders();
  }

  // ---------- layers ----------
  const hiddenBox = (b) => !state.layers.prelabels && b.origin === "model" && !b.edited;

  function togglePrelabels() {
    state.layers.prelabels = !state.layers.prelabels;
    if (state.selected >= 0 && hiddenBox(state.boxes[state.selected])) state.selected = -1;
    const hidden = state.boxes.filter(hiddenBox).length;
    setStatus(state.layers.prelabels ? "Pre-labels shown." : `Pre-labels hidden (${hidden} untouched model boxes stay in your answer unless you delete them).`);
    draw();
    renderControls();
  }

  function toggleConfidences() {
    state.layers.confidences = !state.layers.confidences;
    draw();
    renderControls();
  }

  async function toggleHeatmap() {
    const kase = requireCase();
    state.layers.heatmap = !state.layers.heatmap;
    if (state.layers.heatmap && !state.heatmap) {
      setStatus("Computing where the detector responds…");
      const { image, objectUrl } = await loadImage(`/v1/review/cases/${kase.id}/heatmap.png`);
      URL.revokeObjectURL(objectUrl);
      if (state.kase !== kase) return;
      state.heatmap = image;
    }
    setStatus(state.layers.heatmap ? "Heatmap: where the detector responds (brighter = stronger)." : "Heatmap off.");
    draw();
  }

  // ---------- view: photo px <-> screen (CSS) px ----------
  function resizeCanvas() {
    const dpr = window.devicePixelRatio || 1;
    const rect = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(rect.width * dpr));
    canvas.height = Math.max(1, Math.round(rect.height * dpr));
  }

  function fit() {
    resizeCanvas();
    if (!state.image) return;
    const rect = canvas.getBoundingClientRect();
    const scale = Math.min(rect.width / state.image.width, rect.height / state.image.height);
    state.view = {
      scale,
      ox: (rect.width - state.image.width * scale) / 2,
      oy: (rect.height - state.image.height * scale) / 2,
    };
    draw();
  }

  function zoom(factor, cx, cy) {
    if (!state.image) return;
    const rect = canvas.getBoundingClientRect();
    const px = cx ?? rect.width / 2;
    const py = cy ?? rect.height / 2;
    const v = state.view;
    const scale = Math.min(40, Math.max(0.05, v.scale * factor));
    const k = scale / v.scale;
    state.view = { scale, ox: px - (px - v.ox) * k, oy: py - (py - v.oy) * k };
    draw();
  }

  function pan(dx, dy) {
    state.view.ox += dx;
    state.view.oy += dy;
    draw();
  }

  const toPhoto = (sx, sy) => [(sx - state.view.ox) / state.view.scale, (sy - state.view.oy) / state.view.scale];
  const toScreen = (x, y) => [x * state.view.scale + state.view.ox, y * state.view.scale + state.view.oy];

  function eventPoint(event) {
    const rect = canvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  function clampBox(box) {
    const w = state.image.width;
    const h = state.image.height;
    const [x1, x2] = [Math.min(box[0], box[2]), Math.max(box[0], box[2])];
    const [y1, y2] = [Math.min(box[1], box[3]), Math.max(box[1], box[3])];
    return [Math.max(0, x1), Math.max(0, y1), Math.min(w, x2), Math.min(h, y2)];
  }

  function hitCorner(sx, sy, slack) {
    if (state.selected < 0) return -1;
    const b = state.boxes[state.selected].box;
    const corners = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];
    return corners.findIndex(([x, y]) => {
      const [cx, cy] = toScreen(x, y);
      return Math.abs(cx - sx) <= HANDLE + slack && Math.abs(cy - sy) <= HANDLE + slack;
    });
  }

  function hitBox(x, y) {
    // the smallest visible box under the pointer, so nested small lesions stay reachable
    let best = -1;
    let bestArea = Infinity;
    state.boxes.forEach((b, i) => {
      if (hiddenBox(b)) return;
      const [x1, y1, x2, y2] = b.box;
      const area = (x2 - x1) * (y2 - y1);
      if (x >= x1 && x <= x2 && y >= y1 && y <= y2 && area < bestArea) {
        best = i;
        bestArea = area;
      }
    });
    return best;
  }

  function defaultLabel() {
    if (state.selected >= 0) return state.boxes[state.selected].label;
    if (state.lastLabel) return state.lastLabel;
    return state.taxonomy.length ? state.taxonomy[0].name : state.kase.classes[0];
  }

  // ---------- pointer input: mouse, pen and touch alike; two fingers pinch-zoom and pan ----------
  canvas.addEventListener("pointerdown", (event) => {
    if (!state.image) return;
    canvas.focus();
    canvas.setPointerCapture(event.pointerId);
    const [sx, sy] = eventPoint(event);
    state.pointers.set(event.pointerId, [sx, sy]);
    if (state.pointers.size === 2) {
      // a second finger: whatever the first one started becomes a pinch (and is undone if it changed anything)
      if (state.drag && state.drag.before && state.drag.changed) restore(state.drag.before);
      if (state.drag && state.drag.mode === "create") state.selected = -1;
      state.drag = null;
      const [a, b] = [...state.pointers.values()];
      state.pinch = { distance: Math.hypot(a[0] - b[0], a[1] - b[1]), mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] };
      draw();
      return;
    }
    if (state.pointers.size > 2) return;
    const [x, y] = toPhoto(sx, sy);
    if (event.button === 1 || event.altKey || state.spaceDown) {
      state.drag = { mode: "pan", sx, sy };
      return;
    }
    if (event.button !== 0) return;
    const slack = event.pointerType === "mouse" ? 2 : 10; // fingers and pens are less precise
    const corner = hitCorner(sx, sy, slack);
    if (corner >= 0) {
      state.drag = { mode: "resize", corner, changed: false, before: snapshot() };
      return;
    }
    const hit = hitBox(x, y);
    if (hit >= 0) {
      state.selected = hit;
      state.drag = { mode: "move", x, y, start: state.boxes[hit].box.slice(), changed: false, before: snapshot() };
    } else if (x >= 0 && y >= 0 && x <= state.image.width && y <= state.image.height) {
      const before = snapshot();
      state.boxes.push({ label: defaultLabel(), box: [x, y, x, y], conf: null, origin: "reviewer", edited: true });
      state.selected = state.boxes.length - 1;
      state.drag = { mode: "create", x, y, before, changed: true };
    } else {
      state.selected = -1;
    }
    draw();
    renderControls();
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!state.pointers.has(event.pointerId)) return;
    const [sx, sy] = eventPoint(event);
    state.pointers.set(event.pointerId, [sx, sy]);
    if (state.pinch && state.pointers.size === 2) {
      const [a, b] = [...state.pointers.values()];
      const distance = Math.hypot(a[0] - b[0], a[1] - b[1]);
      const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
      pan(mid[0] - state.pinch.mid[0], mid[1] - state.pinch.mid[1]);
      if (state.pinch.distance > 0) zoom(distance / state.pinch.distance, mid[0], mid[1]);
      state.pinch = { distance, mid };
      return;
    }
    const drag = state.drag;
    if (!drag) return;
    if (drag.mode === "pan") {
      pan(sx - drag.sx, sy - drag.sy);
      drag.sx = sx;
      drag.sy = sy;
      return;
    }
    const [x, y] = toPhoto(sx, sy);
    const box = state.boxes[state.selected];
    if (drag.mode === "create") {
      box.box = clampBox([drag.x, drag.y, x, y]);
    } else if (drag.mode === "move") {
      const w = state.image.width;
      const h = state.image.height;
      const [x1, y1, x2, y2] = drag.start;
      const dx = Math.min(Math.max(x - drag.x, -x1), w - x2);
      const dy = Math.min(Math.max(y - drag.y, -y1), h - y2);
      box.box = [x1 + dx, y1 + dy, x2 + dx, y2 + dy];
      if (dx !== 0 || dy !== 0) {
        drag.changed = true;
        box.edited = true;
      }
    } else if (drag.mode === "resize") {
      const b = box.box.slice();
      if (drag.corner === 0 || drag.corner === 3) b[0] = x; else b[2] = x;
      if (drag.corner === 0 || drag.corner === 1) b[1] = y; else b[3] = y;
      box.box = clampBox(b);
      // corners may swap while dragging past the opposite side: follow the pointer's corner
      drag.corner = (x < (box.box[0] + box.box[2]) / 2 ? (y < (box.box[1] + box.box[3]) / 2 ? 0 : 3)
        : (y < (box.box[1] + box.box[3]) / 2 ? 1 : 2));
      drag.changed = true;
      box.edited = true;
    }
    draw();
  });

  function endPointer(event) {
    if (!state.pointers.has(event.pointerId)) return;
    state.pointers.delete(event.pointerId);
    if (state.pinch) {
      if (state.pointers.size < 2) state.pinch = null;
      return;
    }
    const drag = state.drag;
    state.drag = null;
    if (!drag || drag.mode === "pan") return;
    if (drag.mode === "create") {
      const [x1, y1, x2, y2] = state.boxes[state.selected].box;
      if (x2 - x1 < MIN_BOX || y2 - y1 < MIN_BOX) {
        state.boxes.splice(state.selected, 1); // a click on empty space only deselects
        state.selected = -1;
        draw();
        renderControls();
        return;
      }
      state.lastLabel = state.boxes[state.selected].label;
    }
    if (drag.changed) {
      remember(drag.before);
      changed();
    }
  }

  canvas.addEventListener("pointerup", endPointer);
  canvas.addEventListener("pointercancel", endPointer);

  canvas.addEventListener("wheel", (event) => {
    if (!state.image) return;
    event.preventDefault();
    const [sx, sy] = eventPoint(event);
    zoom(event.deltaY < 0 ? 1.2 : 1 / 1.2, sx, sy);
  }, { passive: false });

  // ---------- keyboard ----------
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLSelectElement) return;
    if (event.ctrlKey || event.metaKey) {
      const key = event.key.toLowerCase();
      if (key === "z" && !event.shiftKey) { event.preventDefault(); undo(); }
      else if ((key === "z" && event.shiftKey) || key === "y") { event.preventDefault(); redo(); }
      return;
    }
    const shiftDigit = event.shiftKey && /^Digit[1-9]$/.test(event.code);
    if (shiftDigit) {
      const entry = state.taxonomy[Number(event.code.slice(5)) - 1];
      if (entry) setClass(entry.name);
      event.preventDefault();
      return;
    }
    const actions = {
      n: () => unlessDirty("next", "press n", () => guarded(nextCase)),
      s: () => guarded(() => submit()),
      k: () => unlessDirty("skip", "press k", () => guarded(skip)),
      u: () => {
        if (!state.kase) return;
        confirmTwice("unusable", "Mark this photo unusable (no boxes, no grade)? Press u again to confirm, Esc to cancel.",
          () => guarded(() => submit("unusable_photo")));
      },
      a: agreeWithModel,
      h: togglePrelabels,
      c: toggleConfidences,
      m: () => guarded(toggleHeatmap),
      r: resetImage,
      f: fit,
      "+": () => zoom(1.25),
      "=": () => zoom(1.25),
      "-": () => zoom(0.8),
      Delete: deleteSelected,
      Backspace: deleteSelected,
      Escape: () => {
        if (state.guard) {
          clearGuard();
          setStatus("Cancelled.");
          return;
        }
        state.selected = -1;
        draw();
        renderControls();
      },
      ArrowLeft: () => pan(40, 0),
      ArrowRight: () => pan(-40, 0),
      ArrowUp: () => pan(0, 40),
      ArrowDown: () => pan(0, -40),
      " ": () => { state.spaceDown = true; },
    };
    if (/^[0-3]$/.test(event.key)) {
      setGrade(Number(event.key));
      event.preventDefault();
      return;
    }
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });
  document.addEventListener("keyup", (event) => {
    if (event.key === " ") state.spaceDown = false;
  });

  // ---------- buttons ----------
  $("next").addEventListener("click", () => unlessDirty("next", "press Next case", () => guarded(nextCase)));
  $("submit").addEventListener("click", () => guarded(() => submit()));
  $("skip").addEventListener("click", () => unlessDirty("skip", "press Skip", () => guarded(skip)));
  $("unusable").addEventListener("click", () => {
    if (!state.kase) return;
    confirmTwice("unusable", "Mark this photo unusable (no boxes, no grade)? Press the button again to confirm.",
      () => guarded(() => submit("unusable_photo")));
  });
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
  $("agree").addEventListener("click", agreeWithModel);
  $("delete-box").addEventListener("click", deleteSelected);
  $("toggle-prelabels").addEventListener("click", togglePrelabels);
  $("toggle-conf").addEventListener("click", toggleConfidences);
  $("toggle-heatmap").addEventListener("click", () => guarded(toggleHeatmap));
  $("reset-image").addEventListener("click", resetImage);
  for (const id of ["brightness", "contrast", "gamma"]) $(id).addEventListener("input", readSliders);
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(0.8));
  $("zoom-fit").addEventListener("click", fit);
  $("box-class").addEventListener("change", (event) => setClass(event.target.value));
  $("load-stats").addEventListener("click", () => guarded(loadStats));
  document.querySelectorAll("#grades button").forEach((button) => {
    button.addEventListener("click", () => setGrade(Number(button.dataset.grade)));
  });
  window.addEventListener("resize", fit);

  // ---------- reliability ----------
  const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`);
  const ci = (pair) => (pair ? ` [${pct(pair[0])}–${pct(pair[1])}]` : "");

  async function loadStats() {
    const stats = await (await api("GET", "/v1/review/stats")).json();
    const rows = stats.agreement.reviewers;
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    const titles = ["reviewer", "cases (consensus / all)", "grade = consensus [95% CI]", "box F1 vs consensus [95% CI]",
      "grade = model [95% CI]", "box F1 vs model", "flag"];
    for (const title of titles) {
      const th = document.createElement("th");
      th.textContent = title;
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      if (r.flagged) tr.classList.add("flagged");
      if (state.me && r.reviewer === state.me.reviewer_id) tr.classList.add("me");
      const model = r.vs_model || {};
      const cells = [
        r.reviewer.slice(0, 12),
        `${r.cases} / ${model.cases ?? 0}`,
        pct(r.grade_agreement) + ci(r.grade_agreement_ci),
        pct(r.box_f1_vs_consensus) + ci(r.box_f1_vs_consensus_ci),
        pct(model.grade_agreement) + ci(model.grade_agreement_ci),
        pct(model.box_f1) + ci(model.box_f1_ci),
        r.flagged ? `below ${pct(stats.agreement.min_agreement)}: ${r.flags.join(", ").replaceAll("_", " ")}` : "",
      ];
      for (const text of cells) tr.insertCell().textContent = text;
    }
    const overall = stats.agreement.overall || {};
    const summary = document.createElement("p");
    summary.className = "hint";
    const kq = overall.grade_kappa_quadratic;
    summary.textContent = `Grade kappa ${overall.grade_kappa ?? "–"}, quadratic-weighted ${kq ?? "–"}; box F1 ${overall.box_f1 ?? "–"}.`;
    $("stats").replaceChildren(summary, table);
    setStatus(`Reliability of ${rows.length} reviewers loaded.`);
  }

  // ---------- rendering ----------
  function labelOptions() {
    const names = state.taxonomy.map((t) => [t.name, t.display]);
    const known = new Set(names.map(([n]) => n));
    const extra = state.kase ? state.kase.classes.filter((c) => !known.has(c)).map((c) => [c, c]) : [];
    return [...names, ...extra];
  }

  function renderControls() {
    const open = Boolean(state.kase);
    for (const id of ["submit", "skip", "unusable", "zoom-in", "zoom-out", "zoom-fit", "toggle-prelabels", "toggle-conf",
      "toggle-heatmap", "agree"]) {
      $(id).disabled = !open || state.busy;
    }
    $("next").disabled = state.busy;
    $("undo").disabled = !open || !state.undo.length;
    $("redo").disabled = !open || !state.redo.length;
    $("load-stats").disabled = !state.me || state.busy;
    const modelGrade = open ? state.kase.model_grade : null;
    document.querySelectorAll("#grades button").forEach((button) => {
      const grade = Number(button.dataset.grade);
      button.disabled = !open;
      button.setAttribute("aria-pressed", String(grade === state.grade));
      button.dataset.model = String(open && grade === modelGrade);
    });
    $("model-grade").textContent = open
      ? `Model: grade ${modelGrade ?? "?"} from ${state.kase.lesion_count ?? "?"} lesions. Yours: ${state.grade ?? "not chosen yet"}.`
      : "";
    $("toggle-prelabels").setAttribute("aria-pressed", String(!state.layers.prelabels));
    $("toggle-conf").setAttribute("aria-pressed", String(state.layers.confidences));
    $("toggle-heatmap").setAttribute("aria-pressed", String(state.layers.heatmap));
    const select = $("box-class");
    const options = open ? labelOptions() : [];
    if (select.options.length !== options.length || [...select.options].some((o, i) => o.value !== options[i][0])) {
      select.replaceChildren(...options.map(([name, display], i) => new Option(`${i + 1} ${display}`, name)));
    }
    const selected = state.selected >= 0 ? state.boxes[state.selected] : null;
    select.disabled = !selected;
    $("delete-box").disabled = !selected;
    if (selected) select.value = selected.label;
    $("box-info").textContent = selected
      ? (selected.origin === "model"
        ? `Model pre-label, confidence ${Math.round(selected.conf * 100)}%${selected.edited ? ", edited" : ""}.`
        : "Your box.")
      : "";
    const submitButton = $("submit");
    submitButton.textContent = !open ? "Submit" : state.grade === null ? "Submit (choose a grade)" : `Submit (${verdictOf()})`;
  }

  function renderInfo() {
    const info = $("info");
    const kase = state.kase;
    const rows = kase ? [
      ["case", kase.id],
      ["reason", kase.reason.replaceAll(",", ", ")],
      ["priority", kase.priority.toFixed(2)],
      ["model", `${kase.model_version ?? "?"}`],
      ["photo", `${kase.width} × ${kase.height}`],
      ["reviews", `${kase.reviews_done} of ${kase.reviews_required}`],
      ["lease until", new Date(kase.lease_expires_at).toLocaleTimeString()],
    ] : [];
    info.replaceChildren(...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v;
      return [dt, dd];
    }));
    renderControls();
  }

  const overlaps = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];

  function tagText(b) {
    const name = b.label.replaceAll("_", " ");
    if (b.origin === "model" && state.layers.confidences && b.conf !== null) {
      return `${name} ${Math.round(b.conf * 100)}%${b.edited ? "*" : ""}`;
    }
    return name;
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    state.drawnTags = [];
    if (!state.image) return;
    const v = state.view;
    ctx.imageSmoothingEnabled = v.scale < 2; // show real pixels when zoomed in on a small lesion
    ctx.setTransform(dpr * v.scale, 0, 0, dpr * v.scale, dpr * v.ox, dpr * v.oy);
    ctx.drawImage(state.shown || state.image, 0, 0);
    if (state.layers.heatmap && state.heatmap) {
      ctx.globalAlpha = 0.75;
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(state.heatmap, 0, 0, state.image.width, state.image.height);
      ctx.globalAlpha = 1;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = "12px system-ui, sans-serif";
    const visible = state.boxes.map((b, i) => [b, i]).filter(([b]) => !hiddenBox(b));
    for (const [b, i] of visible) {
      const [x1, y1] = toScreen(b.box[0], b.box[1]);
      const [x2, y2] = toScreen(b.box[2], b.box[3]);
      const selected = i === state.selected;
      ctx.lineWidth = selected ? 2.5 : 1.5;
      ctx.strokeStyle = selected ? "#00e5ff" : b.origin === "model" && !b.edited ? "#ffd400" : "#7CFC00";
      ctx.setLineDash(b.origin === "model" && !b.edited ? [5, 3] : []);
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.setLineDash([]);
      if (selected) {
        ctx.fillStyle = ctx.strokeStyle;
        for (const [cx, cy] of [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]) {
          ctx.fillRect(cx - HANDLE / 2, cy - HANDLE / 2, HANDLE, HANDLE);
        }
      }
    }
    // tags last, placed where they do not cover another tag (the selected box's tag first, always drawn)
    const order = visible.slice().sort(([, a], [, b]) => (b === state.selected) - (a === state.selected));
    const placed = [];
    for (const [b, i] of order) {
      const text = tagText(b);
      const w = ctx.measureText(text).width + 4;
      const h = 14;
      const [x1, y1] = toScreen(b.box[0], b.box[1]);
      const [x2, y2] = toScreen(b.box[2], b.box[3]);
      const candidates = [[x1, y1 - h], [x1, y2], [x2 - w, y1 - h], [x2 - w, y2], [x2 + 2, y1], [x1 - w - 2, y1]];
      let spot = candidates.find(([tx, ty]) => !placed.some((p) => overlaps(p, [tx, ty, tx + w, ty + h])));
      if (!spot) {
        if (i !== state.selected) continue; // a crowded cluster: the tag shows when the box is selected
        spot = candidates[0];
      }
      const rect = [spot[0], spot[1], spot[0] + w, spot[1] + h];
      placed.push(rect);
      ctx.fillStyle = "rgba(20, 24, 30, 0.72)";
      ctx.fillRect(rect[0], rect[1], w, h);
      ctx.fillStyle = i === state.selected ? "#00e5ff" : b.origin === "model" && !b.edited ? "#ffd400" : "#7CFC00";
      ctx.fillText(text, rect[0] + 2, rect[1] + 11);
      state.drawnTags.push({ index: i, text, rect });
    }
  }

  // A read-only window for tests and the console: where the photo sits on screen, the current answer, layers.
  window.skintroubleReview = Object.freeze({
    view: () => ({ ...state.view }),
    boxes: () => state.boxes.map((b) => ({ label: b.label, box: b.box.slice() })),
    caseId: () => (state.kase ? state.kase.id : null),
    touched: () => state.dirty,
    grade: () => state.grade,
    history: () => ({ undo: state.undo.length, redo: state.redo.length }),
    tags: () => state.drawnTags.map((t) => ({ ...t, rect: t.rect.slice() })),
    layers: () => ({ ...state.layers, heatmapLoaded: Boolean(state.heatmap) }),
    adjust: () => ({ ...state.adjust }),
    loggedIn: () => Boolean(state.me),
  });

  // ---------- start ----------
  renderLogin();
  resizeCanvas();
  renderInfo();
  if (state.key) {
    guarded(async () => {
      try {
        await logIn(state.key);
      } catch (err) {
        state.key = "";
        sessionStorage.removeItem(KEY_STORAGE);
        renderLogin();
        throw err;
      }
    });
  } else {
    setStatus("Enter your dermatologist API key to start.");
  }
})();
