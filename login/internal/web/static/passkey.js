// Latchkey passkeys: the site's one script, loaded only by the pages that
// offer passkeys (their CSP allows scripts from this origin, nothing
// inline). Every page works without it: it only brings to life the
// passkey forms, which stay hidden when there is no script or no WebAuthn.
//
// A passkey form is <form data-passkey="get|create" data-options="JSON">,
// the options the server made for navigator.credentials (one ceremony,
// single use), with a hidden input name="credential". On submit the
// browser runs the ceremony, puts the answer (PublicKeyCredential as
// JSON, binary fields base64url) into that input and submits the form.
// A "get" form with data-conditional also offers its passkeys in the
// autofill of the input with autocomplete="… webauthn" (conditional
// mediation), when the browser supports it.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function decode(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function encode(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      return { type: c.type, id: decode(c.id), transports: c.transports };
    });
  }

  function options(form) {
    var o = JSON.parse(form.getAttribute("data-options")).publicKey;
    o.challenge = decode(o.challenge);
    if (form.getAttribute("data-passkey") === "create") {
      o.user.id = decode(o.user.id);
      o.excludeCredentials = descriptors(o.excludeCredentials);
    } else {
      o.allowCredentials = descriptors(o.allowCredentials);
    }
    return o;
  }

  function serialize(cred) {
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: encode(cred.rawId),
      type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: encode(r.clientDataJSON) }
    };
    if (cred.authenticatorAttachment) {
      out.authenticatorAttachment = cred.authenticatorAttachment;
    }
    if (r.attestationObject) {
      out.response.attestationObject = encode(r.attestationObject);
      if (r.getTransports) {
        out.response.transports = r.getTransports();
      }
    } else {
      out.response.authenticatorData = encode(r.authenticatorData);
      out.response.signature = encode(r.signature);
      if (r.userHandle) {
        out.response.userHandle = encode(r.userHandle);
      }
    }
    return JSON.stringify(out);
  }

  function say(form, text) {
    var el = form.querySelector("[data-passkey-error]");
    if (el) {
      el.textContent = text;
      el.hidden = !text;
    }
  }

  function send(form, cred) {
    form.querySelector("input[name=credential]").value = serialize(cred);
    form.submit();
  }

  // The pending conditional (autofill) request, if any: it must end
  // before the browser accepts another request.
  var pending = null;

  function conditional(form) {
    if (!PublicKeyCredential.isConditionalMediationAvailable) {
      return;
    }
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (!ok) {
        return;
      }
      var ctl = new AbortController();
      var p = navigator.credentials.get({ mediation: "conditional", publicKey: options(form), signal: ctl.signal });
      pending = { ctl: ctl, done: p.catch(function () {}) };
      p.then(function (cred) {
        pending = null;
        if (cred) {
          send(form, cred);
        }
      }, function () {});
    });
  }

  function run(form) {
    say(form, "");
    var ceremony = function () {
      var pk = options(form);
      return form.getAttribute("data-passkey") === "create"
        ? navigator.credentials.create({ publicKey: pk })
        : navigator.credentials.get({ publicKey: pk });
    };
    var start = Promise.resolve();
    if (pending) {
      pending.ctl.abort();
      start = pending.done;
      pending = null;
    }
    start.then(ceremony).then(function (cred) {
      if (cred) {
        send(form, cred);
      }
    }, function (err) {
      // The words are the page's (data-passkey-failed, -exists), in its
      // language: the script has none of its own.
      var msg = form.getAttribute("data-passkey-failed") || "";
      if (err && err.name === "InvalidStateError" && form.getAttribute("data-passkey-exists")) {
        msg = form.getAttribute("data-passkey-exists");
      }
      say(form, msg);
    });
  }

  var forms = document.querySelectorAll("form[data-passkey]");
  for (var i = 0; i < forms.length; i++) {
    (function (form) {
      var box = form.closest("[data-passkey-box]") || form;
      box.hidden = false;
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        run(form);
      });
      if (form.hasAttribute("data-conditional")) {
        conditional(form);
      }
    })(forms[i]);
  }
  var nojs = document.querySelectorAll("[data-passkey-nojs]");
  for (var j = 0; j < nojs.length; j++) {
    nojs[j].hidden = true;
  }
})();
