// ReturnSync page behaviour. Served from static/ (the Content Security Policy allows no
// inline script): every handler is delegated from the document, so htmx swaps need no re-binding.
(function () {
"use strict";
// Filter URLs stay short and shareable: empty fields are left out of htmx GETs.
document.addEventListener("htmx:configRequest", function (event) {
  var data = event.detail.formData;
  if (event.detail.verb !== "get" || !data) { return; }
  Array.from(new Set(data.keys())).forEach(function (key) {
    var kept = data.getAll(key).filter(function (value) { return value !== ""; });
    data.delete(key);
    kept.forEach(function (value) { data.append(key, value); });
  });
});
// A session that expired mid-page: the server answers an htmx request with the login
// page; show it as a page rather than swapping it into a table.
var loginPath = document.body.getAttribute("data-login-url") || "/accounts/login/";
document.addEventListener("htmx:beforeSwap", function (event) {
  var url = event.detail.xhr.responseURL || "";
  if (url.indexOf(loginPath) !== -1 && window.location.pathname !== loginPath) {
    event.detail.shouldSwap = false;
    window.location.assign(url);
  }
});
// Multiple-choice filters show how many options are ticked.
document.addEventListener("change", function (event) {
  var menu = event.target.closest("details.multi");
  if (!menu) { return; }
  var ticked = menu.querySelectorAll("input:checked").length;
  var pill = menu.querySelector(".count-pill");
  if (!pill) {
    pill = document.createElement("span");
    pill.className = "count-pill";
    menu.querySelector("summary").append(" ", pill);
  }
  pill.textContent = ticked;
  pill.hidden = ticked === 0;
});
// Copy buttons ("data-copy") copy the text field beside them; open filter
// dropdowns close when clicking elsewhere.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (button) {
    var field = button.parentElement.querySelector("input");
    field.select();
    if (navigator.clipboard) { navigator.clipboard.writeText(field.value); }
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  }
  document.querySelectorAll("details.multi[open]").forEach(function (menu) {
    if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
  });
});
// After a bulk action the results reload from the current (pushed) URL: same filters, sort, page.
document.addEventListener("exceptionsChanged", function () {
  htmx.ajax("GET", window.location.href, {target: "#list-partial", swap: "outerHTML"});
});
}());
