// The console's own script: niceties only. Every page works without it (forms post).
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Copy buttons: <button data-copy="element-id">.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var source = document.getElementById(btn.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.value || source.textContent.trim()).then(function () {
      btn.textContent = "Copied";
    });
  });

  // Confirm before destructive posts: <form data-confirm="question">.
  document.addEventListener("submit", function (ev) {
    var q = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
    if (q && !window.confirm(q)) ev.preventDefault();
  });

  // Selects that act on change (the org switcher); their submit button hides with .js.
  document.addEventListener("change", function (ev) {
    if (ev.target.matches && ev.target.matches("select[data-autosubmit]")) ev.target.form.submit();
  });

  // Live filter of a table: <input data-filter="table-id">.
  document.addEventListener("input", function (ev) {
    var id = ev.target.getAttribute && ev.target.getAttribute("data-filter");
    if (!id) return;
    var needle = ev.target.value.toLowerCase();
    document.querySelectorAll("#" + id + " tbody tr").forEach(function (tr) {
      tr.hidden = needle !== "" && tr.textContent.toLowerCase().indexOf(needle) < 0;
    });
  });

  // Invitation links carry their token in the fragment (never sent to a server). The
  // sign-in detour keeps the fragment through its redirect, so take it on any page, keep it
  // for this tab, and put it in the accept form when that page shows.
  var m = /(?:^|[#&])token=(inv_[^&]+)/.exec(window.location.hash);
  if (m) {
    try { sessionStorage.setItem("portcullis.invitation", decodeURIComponent(m[1])); } catch (e) {}
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  var field = document.querySelector("input[data-invitation-token]");
  if (field && !field.value) {
    try { field.value = sessionStorage.getItem("portcullis.invitation") || ""; } catch (e) {}
  }
  if (/[?&]notice=invitation_accepted/.test(window.location.search)) {
    try { sessionStorage.removeItem("portcullis.invitation"); } catch (e) {}
  }
})();
