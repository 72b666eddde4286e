// Keyboard shortcuts of the decision panel (our own file, served with the static files; no CDN).
// a: approve and next · r: focus the rejection reason · e: focus the email edit · h: timeline.
// Ignored while a field has the focus, and with Ctrl, Alt or Meta held.
(function () {
  "use strict";
  function typing(target) {
    var tag = (target && target.tagName) || "";
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.altKey || event.metaKey || typing(event.target)) {
      return;
    }
    var panel = document.getElementById("decide");
    if (!panel) {
      return;
    }
    var act = {
      a: function () {
        var b = document.getElementById("approve-next");
        if (b && window.confirm("Approve this request and open the next one?")) { b.click(); }
      },
      r: function () { var f = panel.querySelector('textarea[name="reason"]'); if (f) { f.focus(); } },
      e: function () { var f = panel.querySelector('input[name="subject"]'); if (f) { f.focus(); } },
      h: function () { var t = document.getElementById("timeline"); if (t) { t.scrollIntoView(); } }
    }[event.key];
    if (act) {
      event.preventDefault();
      act();
    }
  });
})();
