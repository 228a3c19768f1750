// HotMUD's web client: the gmcp.mudstandards.org websocket subprotocol.
//
// BINARY frames carry the game's text (UTF-8 with ANSI colour) both ways; a
// frame sent holds one line. TEXT frames carry GMCP, "Package.Name json",
// both ways: Room.Info gives the room's name and exits, Char.Name who is
// playing, and Client.Password {"hidden": true|false} says when the game
// asks for a password (the input line becomes a password field). The page
// sends Core.Hello, Core.Supports.Set and Client.Window {"cols", "rows"}, its
// size in characters, which the game takes as a telnet client's NAWS.
"use strict";

(() => {
  const SUBPROTOCOL = "gmcp.mudstandards.org";
  const MAX_LINES = 2000;
  const HISTORY = 200;
  const RETRY_FIRST = 1000;
  const RETRY_MOST = 5000;

  const output = document.getElementById("output");
  const status = document.getElementById("status");
  const reconnectButton = document.getElementById("reconnect");
  const form = document.getElementById("input-form");
  const input = document.getElementById("input");
  const inputLabel = document.getElementById("input-label");
  const room = document.getElementById("room");
  const roomName = document.getElementById("room-name");
  const exits = document.getElementById("exits");

  const encoder = new TextEncoder();
  let decoder = new TextDecoder("utf-8");
  let socket = null;
  let retryDelay = RETRY_FIRST;
  let retryTimer = null;
  let hidden = false;
  let playing = "";
  const history = [];
  let historyAt = 0;
  let draft = "";

  // -- ANSI: SGR colours (16, 256 and truecolour) and attributes; other escapes dropped --

  const PALETTE = [
    [0, 0, 0], [205, 0, 0], [0, 205, 0], [205, 205, 0],
    [0, 0, 238], [205, 0, 205], [0, 205, 205], [229, 229, 229],
    [127, 127, 127], [255, 0, 0], [0, 255, 0], [255, 255, 0],
    [92, 92, 255], [255, 0, 255], [0, 255, 255], [255, 255, 255],
  ];

  function xterm(n) {
    if (n < 16) return PALETTE[n];
    if (n < 232) {
      const i = n - 16;
      const level = (v) => (v === 0 ? 0 : 55 + v * 40);
      return [level(Math.floor(i / 36)), level(Math.floor(i / 6) % 6), level(i % 6)];
    }
    const grey = 8 + (n - 232) * 10;
    return [grey, grey, grey];
  }

  const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;

  function blankStyle() {
    return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false };
  }

  let style = blankStyle();
  let pending = ""; // an escape sequence cut off at the end of a frame
  let line = null; // the line being written (a prompt has no line end)

  function extended(codes, i) {
    // 38;5;n or 38;2;r;g;b (and 48;...): [colour, codes used]
    if (codes[i + 1] === 5 && codes.length > i + 2) return [xterm(codes[i + 2] & 255), 3];
    if (codes[i + 1] === 2 && codes.length > i + 4) {
      return [[codes[i + 2] & 255, codes[i + 3] & 255, codes[i + 4] & 255], 5];
    }
    return [null, codes.length - i];
  }

  function sgr(params) {
    const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => (p === "" ? 0 : parseInt(p, 10)));
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) style = blankStyle();
      else if (c === 1) style.bold = true;
      else if (c === 2) style.dim = true;
      else if (c === 3) style.italic = true;
      else if (c === 4) style.underline = true;
      else if (c === 7) style.inverse = true;
      else if (c === 22) style.bold = style.dim = false;
      else if (c === 23) style.italic = false;
      else if (c === 24) style.underline = false;
      else if (c === 27) style.inverse = false;
      else if (c >= 30 && c <= 37) style.fg = PALETTE[c - 30];
      else if (c === 39) style.fg = null;
      else if (c >= 40 && c <= 47) style.bg = PALETTE[c - 40];
      else if (c === 49) style.bg = null;
      else if (c >= 90 && c <= 97) style.fg = PALETTE[c - 90 + 8];
      else if (c >= 100 && c <= 107) style.bg = PALETTE[c - 100 + 8];
      else if (c === 38 || c === 48) {
        const [colour, used] = extended(codes, i);
        if (colour) {
          if (c === 38) style.fg = colour;
          else style.bg = colour;
        }
        i += used - 1;
      }
    }
  }

  function newLine() {
    line = document.createElement("div");
    line.className = "line";
    output.appendChild(line);
    while (output.childElementCount > MAX_LINES) output.removeChild(output.firstElementChild);
  }

  function put(text) {
    if (!text) return;
    if (line === null) newLine();
    const plain = !style.fg && !style.bg && !style.bold && !style.dim && !style.italic && !style.underline && !style.inverse;
    if (plain) {
      line.appendChild(document.createTextNode(text));
      return;
    }
    const span = document.createElement("span");
    span.textContent = text;
    let fg = style.fg;
    let bg = style.bg;
    if (style.inverse) [fg, bg] = [bg || [17, 19, 24], fg || [216, 218, 224]];
    if (fg) span.style.color = rgb(fg);
    if (bg) span.style.backgroundColor = rgb(bg);
    const classes = [];
    if (style.bold) classes.push("b");
    if (style.dim) classes.push("d");
    if (style.italic) classes.push("i");
    if (style.underline) classes.push("u");
    if (classes.length) span.className = classes.join(" ");
    line.appendChild(span);
  }

  // Game text, as it comes: lines end with CR LF; escapes may be split between frames.
  function show(text) {
    const atBottom = output.scrollHeight - output.scrollTop - output.clientHeight < 40;
    text = pending + text;
    pending = "";
    let i = 0;
    let run = "";
    while (i < text.length) {
      const ch = text[i];
      if (ch === "\x1b") {
        put(run);
        run = "";
        const rest = text.slice(i);
        let m = /^\x1b\[([0-9;:?]*)([\x20-\x2f]*)([\x40-\x7e])/.exec(rest);
        if (m) {
          if (m[3] === "m" && !m[2]) sgr(m[1]);
          i += m[0].length;
          continue;
        }
        m = /^\x1b\][^\x07\x1b]*(\x07|\x1b\\)/.exec(rest);
        if (m) {
          i += m[0].length;
          continue;
        }
        if (/^\x1b(\[[0-9;:?\x20-\x2f]*|\][^\x07\x1b]*|\x1b?)$/.test(rest) && rest.length < 256) {
          pending = rest; // the rest of it comes in the next frame
          break;
        }
        i += 2; // some other escape: dropped
        continue;
      }
      if (ch === "\n") {
        put(run);
        run = "";
        if (line === null) newLine();
        line = null;
      } else if (ch !== "\r" && ch !== "\x07") {
        run += ch;
      }
      i++;
    }
    put(run);
    if (atBottom) output.scrollTop = output.scrollHeight;
  }

  function notice(text) {
    if (line !== null) line = null;
    newLine();
    line.className = "line notice";
    line.textContent = text;
    line = null;
    output.scrollTop = output.scrollHeight;
  }

  function echo(text) {
    // What the player typed, after the prompt it answers (not for a password).
    if (line === null) newLine();
    const span = document.createElement("span");
    span.className = "typed";
    span.textContent = text;
    line.appendChild(span);
    line = null;
    output.scrollTop = output.scrollHeight;
  }

  // -- GMCP ------------------------------------------------------------------------

  function gmcp(message) {
    const space = message.indexOf(" ");
    const name = (space < 0 ? message : message.slice(0, space)).toLowerCase();
    let data = null;
    if (space >= 0) {
      try {
        data = JSON.parse(message.slice(space + 1));
      } catch (e) {
        return;
      }
    }
    if (name === "room.info" && data && typeof data === "object") {
      showRoom(data);
    } else if (name === "char.name" && data && data.name) {
      playing = String(data.name);
      setStatus(`Connected: playing ${playing}.`);
      document.title = `${playing} - HotMUD`;
    } else if (name === "client.password" && data && typeof data === "object") {
      setHidden(Boolean(data.hidden));
    }
  }

  function showRoom(info) {
    roomName.textContent = info.name ? String(info.name) : "";
    exits.replaceChildren();
    const names = info.exits && typeof info.exits === "object" ? Object.keys(info.exits) : [];
    for (const direction of names) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "exit";
      button.textContent = direction;
      button.addEventListener("click", () => {
        command(direction);
        input.focus();
      });
      item.appendChild(button);
      exits.appendChild(item);
    }
    room.hidden = false;
  }

  function sendGmcp(name, data) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(`${name} ${JSON.stringify(data)}`);
  }

  // The window's size in characters, for the game to wrap its text to (as NAWS would).
  let sentCols = 0;
  let resizeTimer = null;

  function sendWindow() {
    const probe = document.createElement("span");
    probe.textContent = "0".repeat(20);
    probe.style.visibility = "hidden";
    probe.style.position = "absolute";
    output.appendChild(probe);
    const charWidth = probe.getBoundingClientRect().width / 20 || 8;
    const lineHeight = probe.getBoundingClientRect().height || 16;
    probe.remove();
    const box = getComputedStyle(output);
    const inner = output.clientWidth - parseFloat(box.paddingLeft) - parseFloat(box.paddingRight);
    const cols = Math.max(20, Math.min(250, Math.floor(inner / charWidth) - 1));
    const rows = Math.max(5, Math.floor(output.clientHeight / lineHeight));
    if (cols !== sentCols && socket && socket.readyState === WebSocket.OPEN) {
      sentCols = cols;
      sendGmcp("Client.Window", { cols, rows });
    }
  }

  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(sendWindow, 200);
  });

  // -- input ---------------------------------------------------------------------------

  function setHidden(on) {
    hidden = on;
    input.value = "";
    input.type = on ? "password" : "text";
    input.autocomplete = on ? "current-password" : "off";
    inputLabel.textContent = on ? "Password" : "Command";
    input.focus();
  }

  function command(text) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      notice("Not connected; reconnecting.");
      return false;
    }
    socket.send(encoder.encode(text));
    echo(hidden ? "" : text);
    return true;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    if (!command(text)) return;
    if (!hidden && text.trim() && history[history.length - 1] !== text) {
      history.push(text);
      if (history.length > HISTORY) history.shift();
    }
    historyAt = history.length;
    draft = "";
    input.value = "";
  });

  input.addEventListener("keydown", (event) => {
    if (hidden || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
    event.preventDefault();
    if (historyAt === history.length) draft = input.value;
    historyAt += event.key === "ArrowUp" ? -1 : 1;
    historyAt = Math.max(0, Math.min(history.length, historyAt));
    input.value = historyAt === history.length ? draft : history[historyAt];
    input.setSelectionRange(input.value.length, input.value.length);
  });

  // -- the connection -----------------------------------------------------------------

  function setStatus(text) {
    status.textContent = text;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    reconnectButton.hidden = true;
    const url = new URL("ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = "";
    url.hash = "";
    setStatus("Connecting\u2026");
    decoder = new TextDecoder("utf-8");
    pending = "";
    style = blankStyle();
    const ws = new WebSocket(url, [SUBPROTOCOL]);
    ws.binaryType = "arraybuffer";
    socket = ws;
    ws.addEventListener("open", () => {
      retryDelay = RETRY_FIRST;
      sentCols = 0;
      setStatus(playing ? `Connected again; log in to play ${playing}.` : "Connected.");
      sendGmcp("Core.Hello", { client: "HotMUD web", version: "1" });
      sendGmcp("Core.Supports.Set", ["Char 1", "Room 1"]);
      sendWindow();
      input.focus();
    });
    ws.addEventListener("message", (event) => {
      if (typeof event.data === "string") gmcp(event.data);
      else show(decoder.decode(event.data, { stream: true }));
    });
    ws.addEventListener("close", (event) => {
      if (socket !== ws) return;
      socket = null;
      line = null;
      if (hidden) setHidden(false);
      // Lost or closed, the page connects again by itself, a little later each time.
      const delay = event.code === 1000 ? Math.max(retryDelay, 3000) : retryDelay;
      retryDelay = Math.min(retryDelay * 2, RETRY_MOST);
      const why = event.code === 1000 ? "The game closed the connection" : "The connection was lost";
      notice(`${why}; connecting again in ${Math.round(delay / 1000)} s.`);
      setStatus(`Disconnected; connecting again in ${Math.round(delay / 1000)} s.`);
      reconnectButton.hidden = false;
      retryTimer = setTimeout(connect, delay);
    });
  }

  reconnectButton.addEventListener("click", connect);
  output.addEventListener("click", () => {
    if (!window.getSelection().toString()) input.focus();
  });

  connect();
})();
