/* Click a QC thumbnail (figure.qc) to show it at full size; click again to shrink it. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("figure.qc"), function (figure) {
      figure.addEventListener("click", function () { figure.classList.toggle("enlarged"); });
    });
  });
})();
