// Passkeys (issue 20): adding one on the account's two-factor page, and using one on the
// second step of sign-in. Each box ([data-passkey]) names its two endpoints, the CSRF
// token (sent as X-CSRFToken) and its messages; the server answers errors as
// {"error": "..."} in the user's language, shown in the box.
(function () {
  "use strict";

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var raw = atob(base64), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      var copy = Object.assign({}, item);
      copy.id = toBytes(item.id);
      return copy;
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.user = Object.assign({}, json.user, {id: toBytes(json.user.id)});
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  function credentialJSON(credential) {
    var response = credential.response, out = {
      id: credential.id, rawId: toText(credential.rawId), type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      response: {clientDataJSON: toText(response.clientDataJSON)}
    };
    if (response.attestationObject) {
      out.response.attestationObject = toText(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(response.authenticatorData);
      out.response.signature = toText(response.signature);
      if (response.userHandle) out.response.userHandle = toText(response.userHandle);
    }
    return out;
  }

  function post(box, url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": box.dataset.csrf},
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.error || box.dataset.failed);
        return data;
      });
    });
  }

  function say(box, text) {
    var place = box.querySelector("[data-passkey-message]");
    place.textContent = text;
    place.hidden = !text;
  }

  function failure(box) {
    return function (error) {
      // The browser's own refusals (cancelled, timed out, no matching key) are DOMExceptions.
      if (window.DOMException && error instanceof DOMException) say(box, box.dataset.cancelled);
      else if (error && error.name === "Error" && error.message) say(box, error.message);
      else say(box, box.dataset.failed);
    };
  }

  function signIn(box) {
    var button = box.querySelector("[data-passkey-start]");
    button.hidden = false;
    button.addEventListener("click", function () {
      say(box, "");
      button.disabled = true;
      post(box, box.dataset.optionsUrl).then(function (json) {
        return navigator.credentials.get({publicKey: requestOptions(json)});
      }).then(function (credential) {
        return post(box, box.dataset.finishUrl, {credential: credentialJSON(credential)});
      }).then(function (data) {
        window.location.assign(data.redirect);
      }).catch(failure(box)).then(function () { button.disabled = false; });
    });
  }

  function register(box) {
    var form = box.querySelector("[data-passkey-form]");
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      say(box, "");
      var name = form.elements.name.value.trim(), button = form.querySelector("button");
      button.disabled = true;
      post(box, box.dataset.optionsUrl).then(function (json) {
        return navigator.credentials.create({publicKey: creationOptions(json)});
      }).then(function (credential) {
        return post(box, box.dataset.finishUrl, {name: name, credential: credentialJSON(credential)});
      }).then(function () {
        window.location.reload();
      }).catch(failure(box)).then(function () { button.disabled = false; });
    });
  }

  document.querySelectorAll("[data-passkey]").forEach(function (box) {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(box, box.dataset.unsupported);
      return;
    }
    if (box.dataset.passkey === "sign-in") signIn(box);
    else register(box);
  });
})();
