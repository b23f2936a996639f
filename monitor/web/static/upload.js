// Drop a video anywhere on the query form's drop zone: it fills the file input (the form works without this).
(function () {
  var zone = document.getElementById("drop");
  var input = document.getElementById("video");
  if (!zone || !input) return;
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      var shown = document.getElementById("dropped");
      if (shown) shown.textContent = e.dataTransfer.files[0].name;
    }
  });
})();
