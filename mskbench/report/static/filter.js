/* Filter a table.filterable by the text typed in its input[data-filter-for]: a row stays when it contains
   every whitespace-separated term (case-insensitive); the count of shown rows goes to [data-count-for]. */
(function () {
  "use strict";
  function apply(input) {
    var table = document.getElementById(input.getAttribute("data-filter-for"));
    var terms = input.value.toLowerCase().split(/\s+/).filter(function (t) { return t.length > 0; });
    var shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var text = row.textContent.toLowerCase();
      var keep = terms.every(function (t) { return text.indexOf(t) !== -1; });
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    var count = document.querySelector('[data-count-for="' + table.id + '"]');
    if (count) { count.textContent = shown + " of " + table.tBodies[0].rows.length + " rows"; }
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("input[data-filter-for]"), function (input) {
      input.addEventListener("input", function () { apply(input); });
      apply(input);
    });
  });
})();
