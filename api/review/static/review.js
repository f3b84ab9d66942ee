// skintrouble review page: claim a case, label lesions with the product's taxonomy on a canvas, grade, submit.
// The canvas is a Konva stage (vendored from npm: /review/static/vendor/konva.min.js); boxes are Konva rectangles
// in photo pixels, moved by Konva's drag and resized by its Transformer; the stage's transform is the view.
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
  const container = $("canvas"); // the Konva stage's container

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
    container.focus();
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
    container.focus();
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

  // ---------- the canvas: a Konva stage (photo layer, boxes layer, tags layer); the view is the stage's transform ----------
  // Boxes live in photo pixels inside the layers; the stage's scale and position map them to the screen.
  const stage = new Konva.Stage({ container, width: Math.max(1, container.clientWidth), height: Math.max(1, container.clientHeight) });
  const photoLayer = new Konva.Layer({ listening: false });
  const boxLayer = new Konva.Layer();
  const tagLayer = new Konva.Layer({ listening: false });
  stage.add(photoLayer, boxLayer, tagLayer);
  const photoNode = new Konva.Image({ x: 0, y: 0 });
  const heatmapNode = new Konva.Image({ x: 0, y: 0, opacity: 0.75, visible: false });
  photoLayer.add(photoNode, heatmapNode);
  const transformer = new Konva.Transformer({
    rotateEnabled: false,
    flipEnabled: false,
    keepRatio: false,
    ignoreStroke: true,
    enabledAnchors: ["top-left", "top-right", "bottom-right", "bottom-left"],
    anchorSize: 2 * HANDLE,
    anchorCornerRadius: 2,
    anchorStroke: "#00e5ff",
    anchorFill: "#00e5ff",
    borderEnabled: false,
    boundBoxFunc: (old, box) => {
      // absolute (screen) coordinates: stay inside the photo, keep a minimal size
      const v = state.view;
      const [left, top] = [v.ox, v.oy];
      const [right, bottom] = [v.ox + state.image.width * v.scale, v.oy + state.image.height * v.scale];
      const min = MIN_BOX * v.scale;
      if (box.width < min || box.height < min) return old;
      if (box.x < left - 0.5 || box.y < top - 0.5 || box.x + box.width > right + 0.5 || box.y + box.height > bottom + 0.5) {
        return old;
      }
      return box;
    },
  });
  boxLayer.add(transformer);
  let boxNodes = []; // Konva.Rect per visible box, `boxIndex` attribute says which

  function applyView() {
    const v = state.view;
    stage.scale({ x: v.scale, y: v.scale });
    stage.position({ x: v.ox, y: v.oy });
    photoLayer.imageSmoothingEnabled(v.scale < 2); // show real pixels when zoomed in on a small lesion
    draw();
  }

  function resizeCanvas() {
    stage.width(Math.max(1, container.clientWidth));
    stage.height(Math.max(1, container.clientHeight));
  }

  function fit() {
    resizeCanvas();
    if (!state.image) return;
    const rect = container.getBoundingClientRect();
    const scale = Math.min(rect.width / state.image.width, rect.height / state.image.height);
    state.view = {
      scale,
      ox: (rect.width - state.image.width * scale) / 2,
      oy: (rect.height - state.image.height * scale) / 2,
    };
    applyView();
  }

  function zoom(factor, cx, cy) {
    if (!state.image) return;
    const rect = container.getBoundingClientRect();
    const px = cx ?? rect.width / 2;
    const py = cy ?? rect.height / 2;
    const v = state.view;
    const scale = Math.min(40, Math.max(0.05, v.scale * factor));
    const k = scale / v.scale;
    state.view = { scale, ox: px - (px - v.ox) * k, oy: py - (py - v.oy) * k };
    applyView();
  }

  function pan(dx, dy) {
    state.view.ox += dx;
    state.view.oy += dy;
    applyView();
  }

  const toPhoto = (sx, sy) => [(sx - state.view.ox) / state.view.scale, (sy - state.view.oy) / state.view.scale];

  function eventPoint(event) {
    const rect = container.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  function clampBox(box) {
    const w = state.image.width;
    const h = state.image.height;
    const [x1, x2] = [Math.min(box[0], box[2]), Math.max(box[0], box[2])];
    const [y1, y2] = [Math.min(box[1], box[3]), Math.max(box[1], box[3])];
    return [Math.max(0, x1), Math.max(0, y1), Math.min(w, x2), Math.min(h, y2)];
  }

  function defaultLabel() {
    if (state.selected >= 0) return state.boxes[state.selected].label;
    if (state.lastLabel) return state.lastLabel;
    return state.taxonomy.length ? state.taxonomy[0].name : state.kase.classes[0];
  }

  // Corner handles as large as a fingertip allows, but never hiding a small box altogether.
  function attachTransformer(node) {
    if (node) {
      const side = Math.min(node.width(), node.height()) * state.view.scale;
      transformer.anchorSize(Math.max(6, Math.min(2 * HANDLE, side / 2)));
    }
    transformer.nodes(node ? [node] : []);
    transformer.moveToTop();
  }

  // Selecting restyles the existing shapes (a pressed shape must survive: Konva may be about to drag it).
  function select(index) {
    state.selected = index;
    for (const node of boxNodes) {
      const i = node.getAttr("boxIndex");
      node.stroke(colour(state.boxes[i], i === index));
      node.strokeWidth(i === index ? 2.5 : 1.5);
    }
    attachTransformer(boxNodes.find((node) => node.getAttr("boxIndex") === index));
    boxLayer.batchDraw();
    drawTags();
    renderControls();
  }

  // A box is moved by Konva's drag and resized by its Transformer; both report back here when done.
  function boxFromNode(node) {
    const x = node.x();
    const y = node.y();
    return [x, y, x + node.width() * node.scaleX(), y + node.height() * node.scaleY()];
  }

  function attachBoxEvents(node) {
    const index = () => node.getAttr("boxIndex");
    node.on("pointerdown", () => {
      if (state.pointers.size > 1) return;
      if (state.selected !== index()) select(index());
    });
    node.on("dragstart", () => {
      node.setAttr("before", snapshot());
      node.setAttr("start", state.boxes[index()].box.slice());
    });
    node.dragBoundFunc((pos) => {
      // absolute position of the box's top-left corner: keep the whole box on the photo
      const v = state.view;
      const b = state.boxes[index()].box;
      const [w, h] = [(b[2] - b[0]) * v.scale, (b[3] - b[1]) * v.scale];
      const x = Math.min(Math.max(pos.x, v.ox), v.ox + state.image.width * v.scale - w);
      const y = Math.min(Math.max(pos.y, v.oy), v.oy + state.image.height * v.scale - h);
      return { x, y };
    });
    node.on("dragmove", () => {
      const box = state.boxes[index()];
      box.box = boxFromNode(node);
      drawTags();
    });
    node.on("dragend", () => {
      const box = state.boxes[index()];
      box.box = boxFromNode(node);
      const start = node.getAttr("start");
      if (start && box.box.some((v, k) => v !== start[k])) {
        box.edited = true;
        remember(node.getAttr("before"));
        setTimeout(changed); // after Konva has finished the drag: the shapes are rebuilt
      }
    });
    node.on("transformstart", () => node.setAttr("before", snapshot()));
    node.on("transform", () => {
      state.boxes[index()].box = clampBox(boxFromNode(node));
      drawTags();
    });
    node.on("transformend", () => {
      const box = state.boxes[index()];
      box.box = clampBox(boxFromNode(node));
      box.edited = true;
      remember(node.getAttr("before"));
      setTimeout(changed);
    });
  }

  // ---------- pointer input on empty photo: new boxes (mouse, pen, touch), pan, two-finger pinch ----------
  function onBox(sx, sy) {
    const shape = stage.getIntersection({ x: sx, y: sy });
    return Boolean(shape && (shape.getAttr("boxIndex") !== undefined || shape.getParent() === transformer));
  }

  container.addEventListener("pointerdown", (event) => {
    if (!state.image) return;
    container.focus();
    const [sx, sy] = eventPoint(event);
    state.pointers.set(event.pointerId, [sx, sy]);
    if (state.pointers.size === 2) {
      // a second finger: whatever the first one started becomes a pinch (and is undone if it changed anything)
      stage.find("Rect").forEach((node) => node.isDragging() && node.stopDrag());
      if (transformer.isTransforming()) transformer.stopTransform();
      const before = state.drag ? state.drag.before : null;
      if (before) restore(before);
      if (state.drag && state.drag.mode === "create") state.selected = -1;
      state.drag = null;
      const [a, b] = [...state.pointers.values()];
      state.pinch = { distance: Math.hypot(a[0] - b[0], a[1] - b[1]), mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] };
      container.setPointerCapture(event.pointerId);
      draw();
      return;
    }
    if (state.pointers.size > 2) return;
    const [x, y] = toPhoto(sx, sy);
    if (event.button === 1 || event.altKey || state.spaceDown) {
      state.drag = { mode: "pan", sx, sy };
      container.setPointerCapture(event.pointerId);
      return;
    }
    if (event.button !== 0 || onBox(sx, sy)) return; // Konva moves or resizes the box
    if (x >= 0 && y >= 0 && x <= state.image.width && y <= state.image.height) {
      container.setPointerCapture(event.pointerId);
      const before = snapshot();
      state.boxes.push({ label: defaultLabel(), box: [x, y, x, y], conf: null, origin: "reviewer", edited: true });
      state.selected = state.boxes.length - 1;
      state.drag = { mode: "create", x, y, before };
    } else {
      state.selected = -1;
    }
    draw();
    renderControls();
  });

  container.addEventListener("pointermove", (event) => {
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
    state.boxes[state.selected].box = clampBox([drag.x, drag.y, x, y]);
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
    const [x1, y1, x2, y2] = state.boxes[state.selected].box;
    if (x2 - x1 < MIN_BOX || y2 - y1 < MIN_BOX) {
      state.boxes.splice(state.selected, 1); // a click on empty space only deselects
      state.selected = -1;
      draw();
      renderControls();
      return;
    }
    state.lastLabel = state.boxes[state.selected].label;
    remember(drag.before);
    changed();
  }

  container.addEventListener("pointerup", endPointer);
  container.addEventListener("pointercancel", endPointer);

  container.addEventListener("wheel", (event) => {
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

  const colour = (b, selected) => (selected ? "#00e5ff" : b.origin === "model" && !b.edited ? "#ffd400" : "#7CFC00");

  // Rebuild the box shapes from the state (never during a Konva drag: the dragged shape is the truth then).
  function draw() {
    if (stage.find("Rect").some((node) => node.isDragging()) || transformer.isTransforming()) {
      drawTags();
      return;
    }
    photoNode.image(state.image ? state.shown || state.image : null);
    heatmapNode.image(state.heatmap);
    heatmapNode.visible(Boolean(state.image && state.layers.heatmap && state.heatmap));
    if (state.image && state.heatmap) heatmapNode.size({ width: state.image.width, height: state.image.height });
    boxNodes.forEach((node) => node.destroy());
    boxNodes = [];
    if (state.image) {
      const visible = state.boxes.map((b, i) => [b, i]).filter(([b]) => !hiddenBox(b));
      // larger boxes below smaller ones, so a small lesion inside a large box stays reachable
      visible.sort(([a], [b]) => (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]) - (a.box[2] - a.box[0]) * (a.box[3] - a.box[1]));
      for (const [b, i] of visible) {
        const selected = i === state.selected;
        const node = new Konva.Rect({
          x: b.box[0],
          y: b.box[1],
          width: b.box[2] - b.box[0],
          height: b.box[3] - b.box[1],
          stroke: colour(b, selected),
          strokeWidth: selected ? 2.5 : 1.5,
          strokeScaleEnabled: false,
          dash: b.origin === "model" && !b.edited ? [5, 3] : [],
          fill: "rgba(0, 0, 0, 0)", // the inside grabs the box, as before
          draggable: true,
          hitStrokeWidth: 8,
        });
        node.setAttr("boxIndex", i);
        attachBoxEvents(node);
        boxLayer.add(node);
        boxNodes.push(node);
      }
    }
    attachTransformer(boxNodes.find((node) => node.getAttr("boxIndex") === state.selected));
    drawTags();
    photoLayer.batchDraw();
    boxLayer.batchDraw();
  }

  // Tags in screen space (drawn on their own layer, scaled back to constant size), placed where they cover neither
  // another tag nor another box; the selected box's tag first and always (then it may cover a box, never a tag).
  function drawTags() {
    tagLayer.destroyChildren();
    state.drawnTags = [];
    if (!state.image) {
      tagLayer.batchDraw();
      return;
    }
    const v = state.view;
    const measure = new Konva.Text({ fontSize: 12, fontFamily: "system-ui, sans-serif" });
    const visible = state.boxes.map((b, i) => [b, i]).filter(([b]) => !hiddenBox(b));
    const order = visible.slice().sort(([, a], [, b]) => (b === state.selected) - (a === state.selected));
    const placed = [];
    // boxes on screen: a tag may not hide another lesion (its own box may be touched)
    const screenBoxes = visible.map(([b, i]) => [i, [b.box[0] * v.scale + v.ox, b.box[1] * v.scale + v.oy,
      b.box[2] * v.scale + v.ox, b.box[3] * v.scale + v.oy]]);
    const free = (rect, own) => !placed.some((p) => overlaps(p, rect))
      && !screenBoxes.some(([j, r]) => j !== own && overlaps(r, rect));
    for (const [b, i] of order) {
      const text = tagText(b);
      const w = measure.measureSize(text).width + 4;
      const h = 14;
      const [x1, y1] = [b.box[0] * v.scale + v.ox, b.box[1] * v.scale + v.oy];
      const [x2, y2] = [b.box[2] * v.scale + v.ox, b.box[3] * v.scale + v.oy];
      const candidates = [[x1, y1 - h], [x1, y2], [x2 - w, y1 - h], [x2 - w, y2], [x2 + 2, y1], [x1 - w - 2, y1]];
      let spot = candidates.find(([tx, ty]) => free([tx, ty, tx + w, ty + h], i));
      if (!spot) {
        if (i !== state.selected) continue; // a crowded cluster: the tag shows when the box is selected
        spot = candidates.find(([tx, ty]) => !placed.some((p) => overlaps(p, [tx, ty, tx + w, ty + h]))) || candidates[0];
      }
      const rect = [spot[0], spot[1], spot[0] + w, spot[1] + h];
      placed.push(rect);
      const tag = new Konva.Label({ x: (spot[0] - v.ox) / v.scale, y: (spot[1] - v.oy) / v.scale, scaleX: 1 / v.scale, scaleY: 1 / v.scale });
      tag.add(new Konva.Tag({ fill: "rgba(20, 24, 30, 0.72)" }));
      tag.add(new Konva.Text({ text, fontSize: 12, fontFamily: "system-ui, sans-serif", padding: 2, fill: colour(b, i === state.selected) }));
      tagLayer.add(tag);
      state.drawnTags.push({ index: i, text, rect });
    }
    measure.destroy();
    tagLayer.batchDraw();
  }

  // A read-only window for tests and the console: where the photo sits on screen, the current answer, layers.
  window.skintroubleReview = Object.freeze({
    view: () => ({ ...state.view }),
    boxes: () => state.boxes.map((b) => ({ label: b.label, box: b.box.slice() })),
    caseId: () => (state.kase ? state.kase.id : null),
    touched: () => state.dirty,
    selected: () => state.selected,
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
  draw();
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
