// Bulk approval: the count and total of what is ticked, kept up to date, and select all / none.
// Amounts are summed per currency in cents (no floating point) and shown the reader's way (Intl).
(function () {
  "use strict";
  function cents(text) {
    var negative = text.charAt(0) === "-", parts = text.replace("-", "").split(".");
    var value = parseInt(parts[0] || "0", 10) * 100 + parseInt(((parts[1] || "") + "00").slice(0, 2), 10);
    return negative ? -value : value;
  }
  function init() {
    var form = document.getElementById("bulk-form"), summary = document.getElementById("bulk-summary");
    if (!form || !summary) return;
    var locale = (summary.dataset.lang || "zh-hans").indexOf("zh") === 0 ? "zh-Hans-CN" : "en-US";
    var boxes = form.querySelectorAll("input[name=document]");
    function update() {
      var count = 0, sums = {};
      boxes.forEach(function (box) {
        box.closest("li").classList.toggle("ticked", box.checked);
        if (!box.checked) return;
        count += 1;
        sums[box.dataset.currency] = (sums[box.dataset.currency] || 0) + cents(box.dataset.amount);
      });
      var currencies = Object.keys(sums);
      if (!currencies.length) { sums.CNY = 0; currencies = ["CNY"]; }
      var total = currencies.map(function (c) {
        return new Intl.NumberFormat(locale, {style: "currency", currency: c}).format(sums[c] / 100);
      }).join(" + ");
      summary.textContent = summary.dataset.template.replace("__COUNT__", count).replace("__TOTAL__", total);
      summary.dataset.count = count;
    }
    form.addEventListener("change", update);
    form.querySelectorAll("[data-select]").forEach(function (button) {
      button.addEventListener("click", function () {
        var on = button.dataset.select === "all";
        boxes.forEach(function (box) { box.checked = on; });
        update();
      });
    });
    update();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
