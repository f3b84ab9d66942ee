// skintrouble review page: claim a case, correct the model's boxes and grade on a canvas, submit.
// Vanilla JS, no dependencies. Boxes are kept in photo pixels; the view maps them to the screen.
"use strict";

(() => {
  const KEY_STORAGE = "skintrouble.reviewKey";
  const HANDLE = 7; // corner handle half-size, screen px
  const MIN_BOX = 3; // smallest box side kept, photo px
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");

  const state = {
    key: sessionStorage.getItem(KEY_STORAGE) || "",
    kase: null, // the claimed case as the API returned it
    image: null,
    imageUrl: null,
    boxes: [], // {label, box: [x1, y1, x2, y2]}
    grade: null,
    selected: -1,
    touched: false,
    view: { scale: 1, ox: 0, oy: 0 },
    drag: null,
    spaceDown: false,
    busy: false,
  };

  // ---------- API ----------
  async function api(method, path, body) {
    const headers = { "X-API-Key": state.key };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        const err = (await response.json()).error;
        message = `${err.message} (${err.code})`;
      } catch (_) { /* not JSON */ }
      throw new Error(message);
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

  // ---------- login ----------
  function renderLogin() {
    document.body.dataset.state = state.key ? (state.kase ? "ready" : "logged-in") : "logged-out";
    $("who").textContent = state.key ? `logged in (key ${state.key.slice(0, 6)}…)` : "not logged in";
    $("key").value = "";
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (!key) return;
    state.key = key;
    sessionStorage.setItem(KEY_STORAGE, key);
    renderLogin();
    setStatus("Logged in. Press n for the next case.");
    canvas.focus();
  });

  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    state.key = "";
    clearCase();
    renderLogin();
    setStatus("Logged out.");
  });

  // ---------- case lifecycle ----------
  function clearCase() {
    if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
    Object.assign(state, { kase: null, image: null, imageUrl: null, boxes: [], grade: null, selected: -1, touched: false });
    renderInfo();
    draw();
  }

  async function loadPhoto(url) {
    const blob = await (await api("GET", url)).blob();
    const objectUrl = URL.createObjectURL(blob);
    const image = new Image();
    image.src = objectUrl;
    await image.decode();
    return { image, objectUrl };
  }

  async function nextCase() {
    if (!state.key) throw new Error("Log in with your API key first.");
    setStatus("Claiming the next case…");
    const response = await api("POST", "/v1/review/claim");
    clearCase();
    if (response.status === 204) {
      renderLogin();
      setStatus("The queue is empty. Nothing to review.");
      return;
    }
    const kase = await response.json();
    const { image, objectUrl } = await loadPhoto(kase.photo_url);
    Object.assign(state, {
      kase,
      image,
      imageUrl: objectUrl,
      boxes: kase.findings.map((f) => ({ label: f.label, box: f.box.slice() })),
      grade: kase.model_grade,
      selected: -1,
      touched: false,
    });
    fit();
    renderLogin();
    renderInfo();
    const expires = new Date(kase.lease_expires_at).toLocaleTimeString();
    setStatus(`Case ${kase.id.slice(0, 8)} claimed until ${expires}: ${kase.findings.length} pre-labels from the model.`);
    canvas.focus();
  }

  async function submit(verdict) {
    const kase = requireCase();
    const chosen = verdict || (state.touched ? "corrected" : "confirmed");
    if (chosen !== "unusable_photo" && state.grade === null) throw new Error("Set a grade (0-3) before submitting.");
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

  // ---------- editing ----------
  function touch() {
    state.touched = true;
    draw();
    renderControls();
  }

  function setGrade(grade) {
    if (!state.kase) return;
    if (grade !== state.grade) {
      state.grade = grade;
      touch();
    }
  }

  function deleteSelected() {
    if (state.selected < 0) return;
    state.boxes.splice(state.selected, 1);
    state.selected = -1;
    touch();
  }

  function setClass(label) {
    if (state.selected < 0 || !label) return;
    if (state.boxes[state.selected].label !== label) {
      state.boxes[state.selected].label = label;
      touch();
    }
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

  function hitCorner(sx, sy) {
    if (state.selected < 0) return -1;
    const b = state.boxes[state.selected].box;
    const corners = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]];
    return corners.findIndex(([x, y]) => {
      const [cx, cy] = toScreen(x, y);
      return Math.abs(cx - sx) <= HANDLE + 2 && Math.abs(cy - sy) <= HANDLE + 2;
    });
  }

  function hitBox(x, y) {
    // the smallest box under the pointer, so nested small lesions stay reachable
    let best = -1;
    let bestArea = Infinity;
    state.boxes.forEach((b, i) => {
      const [x1, y1, x2, y2] = b.box;
      const area = (x2 - x1) * (y2 - y1);
      if (x >= x1 && x <= x2 && y >= y1 && y <= y2 && area < bestArea) {
        best = i;
        bestArea = area;
      }
    });
    return best;
  }

  canvas.addEventListener("mousedown", (event) => {
    if (!state.image) return;
    canvas.focus();
    const [sx, sy] = eventPoint(event);
    const [x, y] = toPhoto(sx, sy);
    if (event.button === 1 || event.altKey || state.spaceDown) {
      state.drag = { mode: "pan", sx, sy };
      return;
    }
    if (event.button !== 0) return;
    const corner = hitCorner(sx, sy);
    if (corner >= 0) {
      state.drag = { mode: "resize", corner, changed: false };
      return;
    }
    const hit = hitBox(x, y);
    if (hit >= 0) {
      state.selected = hit;
      state.drag = { mode: "move", x, y, start: state.boxes[hit].box.slice(), changed: false };
    } else if (x >= 0 && y >= 0 && x <= state.image.width && y <= state.image.height) {
      const label = state.selected >= 0 ? state.boxes[state.selected].label : state.kase.classes[0];
      state.boxes.push({ label, box: [x, y, x, y] });
      state.selected = state.boxes.length - 1;
      state.drag = { mode: "create", x, y };
    } else {
      state.selected = -1;
    }
    draw();
    renderControls();
  });

  window.addEventListener("mousemove", (event) => {
    const drag = state.drag;
    if (!drag) return;
    const [sx, sy] = eventPoint(event);
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
      drag.changed = drag.changed || dx !== 0 || dy !== 0;
    } else if (drag.mode === "resize") {
      const b = box.box.slice();
      if (drag.corner === 0 || drag.corner === 3) b[0] = x; else b[2] = x;
      if (drag.corner === 0 || drag.corner === 1) b[1] = y; else b[3] = y;
      box.box = clampBox(b);
      // corners may swap while dragging past the opposite side: follow the pointer's corner
      drag.corner = (x < (box.box[0] + box.box[2]) / 2 ? (y < (box.box[1] + box.box[3]) / 2 ? 0 : 3)
        : (y < (box.box[1] + box.box[3]) / 2 ? 1 : 2));
      drag.changed = true;
    }
    draw();
  });

  window.addEventListener("mouseup", () => {
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
      touch();
    } else if (drag.changed) {
      touch();
    }
  });

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
    if (event.ctrlKey || event.metaKey) return;
    const shiftDigit = event.shiftKey && /^Digit[1-9]$/.test(event.code);
    if (shiftDigit) {
      const label = state.kase && state.kase.classes[Number(event.code.slice(5)) - 1];
      if (label) setClass(label);
      event.preventDefault();
      return;
    }
    const actions = {
      n: () => guarded(nextCase),
      s: () => guarded(() => submit()),
      k: () => guarded(skip),
      u: () => guarded(() => submit("unusable_photo")),
      f: fit,
      "+": () => zoom(1.25),
      "=": () => zoom(1.25),
      "-": () => zoom(0.8),
      Delete: deleteSelected,
      Backspace: deleteSelected,
      Escape: () => { state.selected = -1; draw(); renderControls(); },
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
  $("next").addEventListener("click", () => guarded(nextCase));
  $("submit").addEventListener("click", () => guarded(() => submit()));
  $("skip").addEventListener("click", () => guarded(skip));
  $("unusable").addEventListener("click", () => guarded(() => submit("unusable_photo")));
  $("delete-box").addEventListener("click", deleteSelected);
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(0.8));
  $("zoom-fit").addEventListener("click", fit);
  $("box-class").addEventListener("change", (event) => setClass(event.target.value));
  document.querySelectorAll("#grades button").forEach((button) => {
    button.addEventListener("click", () => setGrade(Number(button.dataset.grade)));
  });
  window.addEventListener("resize", fit);

  // ---------- rendering ----------
  function renderControls() {
    const open = Boolean(state.kase);
    for (const id of ["submit", "skip", "unusable", "zoom-in", "zoom-out", "zoom-fit"]) $(id).disabled = !open || state.busy;
    $("next").disabled = state.busy;
    document.querySelectorAll("#grades button").forEach((button) => {
      button.disabled = !open;
      button.setAttribute("aria-pressed", String(Number(button.dataset.grade) === state.grade));
    });
    const select = $("box-class");
    const classes = open ? state.kase.classes : [];
    if (select.options.length !== classes.length || [...select.options].some((o, i) => o.value !== classes[i])) {
      select.replaceChildren(...classes.map((name, i) => new Option(`${i + 1} ${name}`, name)));
    }
    const selected = state.selected >= 0 ? state.boxes[state.selected] : null;
    select.disabled = !selected;
    $("delete-box").disabled = !selected;
    if (selected) select.value = selected.label;
    $("submit").textContent = state.touched ? "Submit (corrected)" : "Submit (confirmed)";
  }

  function renderInfo() {
    const info = $("info");
    const kase = state.kase;
    const rows = kase ? [
      ["case", kase.id],
      ["reason", kase.reason.replaceAll(",", ", ")],
      ["priority", kase.priority.toFixed(2)],
      ["model", `${kase.model_version ?? "?"}`],
      ["model grade", `${kase.model_grade ?? "?"} (${kase.lesion_count ?? "?"} lesions)`],
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

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!state.image) return;
    const v = state.view;
    ctx.imageSmoothingEnabled = v.scale < 2; // show real pixels when zoomed in on a small lesion
    ctx.setTransform(dpr * v.scale, 0, 0, dpr * v.scale, dpr * v.ox, dpr * v.oy);
    ctx.drawImage(state.image, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = "12px system-ui, sans-serif";
    state.boxes.forEach((b, i) => {
      const [x1, y1] = toScreen(b.box[0], b.box[1]);
      const [x2, y2] = toScreen(b.box[2], b.box[3]);
      const selected = i === state.selected;
      ctx.lineWidth = selected ? 2.5 : 1.5;
      ctx.strokeStyle = selected ? "#00e5ff" : "#ffd400";
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.fillText(b.label, x1 + 2, Math.max(12, y1 - 3));
      if (selected) {
        for (const [cx, cy] of [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]) {
          ctx.fillRect(cx - HANDLE / 2, cy - HANDLE / 2, HANDLE, HANDLE);
        }
      }
    });
  }

  // A read-only window for tests and the console: where the photo sits on screen, and the current boxes.
  window.skintroubleReview = Object.freeze({
    view: () => ({ ...state.view }),
    boxes: () => state.boxes.map((b) => ({ label: b.label, box: b.box.slice() })),
    caseId: () => (state.kase ? state.kase.id : null),
    touched: () => state.touched,
  });

  renderLogin();
  resizeCanvas();
  renderInfo();
  setStatus(state.key ? "Press n for the next case." : "Enter your dermatologist API key to start.");
})();
