(function () {
  "use strict";
  // Sortable, filterable per-layer tables. Reads the DOM only; no data is embedded in this script.
  function key(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell) { return numeric ? -Infinity : ""; }
    if (numeric) {
      var v = parseFloat(cell.getAttribute("data-v"));
      return isNaN(v) ? -Infinity : v;
    }
    return cell.textContent.trim().toLowerCase();
  }

  function sortBy(table, th, index) {
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, index, numeric), y = key(b, index, numeric);
      var c = x < y ? -1 : x > y ? 1 : 0;
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function setUpSorting(table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      var button = th.querySelector("button");
      if (button) { button.addEventListener("click", function () { sortBy(table, th, index); }); }
    });
  }

  // "Other" rows (elementwise, reshape ...) stay folded unless shown, asked for by kind, or searched for.
  // Without this script every row and column shows.
  function setUpFilter(controls) {
    var table = document.getElementById(controls.getAttribute("data-table"));
    if (!table) { return; }
    var text = controls.querySelector(".f-text");
    var category = controls.querySelector(".f-cat");
    var other = controls.querySelector(".f-other");
    var columns = controls.querySelector(".f-cols");
    var count = controls.querySelector(".f-count");
    function apply() {
      var needle = text.value.trim().toLowerCase();
      var kind = category.value;
      var unfold = (other && other.checked) || kind === "other" || needle !== "";
      var rows = table.tBodies[0].rows, shown = 0, folded = 0;
      Array.prototype.forEach.call(rows, function (row) {
        var cat = row.getAttribute("data-cat");
        var ok = (!needle || row.getAttribute("data-text").indexOf(needle) !== -1) && (!kind || cat === kind);
        var fold = ok && cat === "other" && !unfold;
        row.hidden = !ok || fold;
        if (fold) { folded += 1; } else if (ok) { shown += 1; }
      });
      count.textContent = "showing " + shown + " of " + rows.length + " layers" +
        (folded ? " (" + folded + " other layers folded)" : "");
      table.classList.toggle("compact", !columns.checked);
    }
    text.addEventListener("input", apply);
    category.addEventListener("change", apply);
    if (other) { other.addEventListener("change", apply); }
    columns.addEventListener("change", apply);
    controls.hidden = false;
    apply();
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), setUpSorting);
  Array.prototype.forEach.call(document.querySelectorAll(".controls[data-table]"), setUpFilter);
})();
