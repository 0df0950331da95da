// Visual-analogue items: a slider beside the number field, kept in step with it.
// Without JavaScript the number field alone works. The slider is not named, so an
// untouched slider never sends its midpoint as if it were an answer.
document.querySelectorAll("input[data-vas]").forEach(function (field) {
  var slider = document.createElement("input");
  slider.type = "range";
  slider.min = field.min;
  slider.max = field.max;
  slider.step = field.step;
  slider.value = field.value || (Number(field.min) + Number(field.max)) / 2;
  slider.setAttribute("aria-label", field.closest("fieldset").querySelector("legend").textContent.trim());
  slider.className = "vas-slider";
  slider.addEventListener("input", function () { field.value = slider.value; });
  field.addEventListener("input", function () { if (field.value !== "") slider.value = field.value; });
  field.parentNode.insertBefore(slider, field);
});
