// dakera memory browser: keyboard shortcuts. The pages work without this file.
(function () {
  "use strict";
  var pendingG = false;

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-row]"));
  }

  function currentRow() {
    var el = document.activeElement;
    return el ? el.closest("[data-row]") : null;
  }

  function focusRow(row) {
    if (!row) return;
    var link = row.querySelector("[data-open]") || row.querySelector("a, button");
    if (link) {
      link.focus();
      row.scrollIntoView({block: "nearest"});
    }
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var i = all.indexOf(currentRow());
    var next = i < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, i + step));
    focusRow(all[next]);
  }

  function follow(selector) {
    var link = document.querySelector(selector);
    if (link) window.location.href = link.href;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var help = document.getElementById("shortcuts");
    if (event.key === "Escape") {
      if (help && !help.hidden) help.hidden = true;
      if (typing(document.activeElement)) document.activeElement.blur();
      return;
    }
    if (typing(document.activeElement)) return;
    if (pendingG) {
      pendingG = false;
      if (event.key === "a") { window.location.href = "/ui/"; event.preventDefault(); }
      return;
    }
    switch (event.key) {
      case "/": {
        var search = document.getElementById("q");
        if (search) { search.focus(); search.select(); event.preventDefault(); }
        break;
      }
      case "j": move(1); event.preventDefault(); break;
      case "k": move(-1); event.preventDefault(); break;
      case "n": follow("[data-next]"); break;
      case "p": follow("[data-prev]"); break;
      case "g": pendingG = true; break;
      case "e": {
        var content = document.getElementById("content");
        if (content) { content.focus(); event.preventDefault(); }
        break;
      }
      case "?": if (help) { help.hidden = !help.hidden; } break;
      default: break;
    }
  });

  // after htmx swaps a row (forget, undo), keep the keyboard where it was
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    var swapped = target && target.id ? document.getElementById(target.id) : null;
    var button = swapped ? swapped.querySelector("button") : null;
    if (button) button.focus();
  });
})();
