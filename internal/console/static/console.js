// asfence console: optional conveniences. Every page works without this.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Times are printed in UTC; hovering shows the reader's local time.
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) { t.title = d.toLocaleString(); }
  });
  // A page showing a run in progress refreshes itself until it ends.
  if (document.querySelector(".o-running") && /^\/runs\/\d+$/.test(location.pathname)) {
    setTimeout(function () { location.reload(); }, 2000);
  }
});
