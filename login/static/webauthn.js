// Passkeys for Gatehouse's sign-in pages. Served as a static file under the
// page's Content-Security-Policy (script-src 'self'); no inline script.
//
// Every passkey form is hidden in the HTML and shown here only when the
// browser supports WebAuthn, so without JavaScript the password path is all
// there is. A form carries data-webauthn ("register", "assert" or
// "discover") and data-begin (the URL answering the options). On submit the
// script posts the form's hidden fields to data-begin, runs the browser's
// ceremony with the options, puts the answer (JSON) into the form's
// "response" field and submits the form normally: the server answers with a
// redirect or a page, as for any form.
(function () {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function b64uToBuf(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufToB64u(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  // The options arrive as JSON with base64url strings where WebAuthn wants
  // ArrayBuffers.
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64uToBuf(pk.challenge);
    pk.user.id = b64uToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    return pk;
  }

  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64uToBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64uToBuf(c.id); });
    return pk;
  }

  // credentialJSON is the answer in the JSON form go-webauthn parses.
  function credentialJSON(cred) {
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: bufToB64u(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: bufToB64u(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64u(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = bufToB64u(r.authenticatorData);
      out.response.signature = bufToB64u(r.signature);
      if (r.userHandle) out.response.userHandle = bufToB64u(r.userHandle);
    }
    return JSON.stringify(out);
  }

  function showError(form, msg) {
    var p = form.querySelector('[data-webauthn-error]');
    if (p) {
      p.textContent = msg;
      p.hidden = false;
    }
  }

  // begin posts the form's fields (CSRF token, continuation, name) and
  // returns the options, or follows the redirect the server asks for.
  // signal aborts the request (a conditional request the user replaced).
  function begin(form, signal) {
    var body = new URLSearchParams();
    new FormData(form).forEach(function (v, k) {
      if (k !== 'response') body.append(k, v);
    });
    return fetch(form.getAttribute('data-begin'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Accept': 'application/json' },
      body: body,
      signal: signal
    }).then(function (res) {
      var type = res.headers.get('Content-Type') || '';
      if (type.indexOf('application/json') !== 0) {
        throw new Error('This page has expired. Reload it and try again.');
      }
      return res.json().then(function (j) {
        if (j.redirect) {
          window.location.assign(j.redirect);
          return null;
        }
        if (!res.ok) throw new Error(j.error || 'Something went wrong. Please try again.');
        return j;
      });
    });
  }

  function finish(form, cred) {
    form.querySelector('input[name=response]').value = credentialJSON(cred);
    form.submit(); // a normal form post: the server answers with a page
  }

  // The AbortController of the conditional request (passkeys offered in
  // the email field's autofill) while it is pending. It is created before
  // the options are asked for: the explicit button aborts it, and with it
  // a begin request still in flight, whose answer would otherwise replace
  // the ceremony cookie of the button's request (one ceremony per
  // browser) and make the button's passkey fail the challenge check.
  var conditional = null;

  // run performs the form's ceremony; signal is given for the conditional
  // request only.
  function run(form, signal) {
    var kind = form.getAttribute('data-webauthn');
    return begin(form, signal).then(function (options) {
      if (!options || (signal && signal.aborted)) return null;
      if (kind === 'register') {
        return navigator.credentials.create({ publicKey: creationOptions(options) });
      }
      var req = { publicKey: requestOptions(options) };
      if (signal) {
        req.mediation = 'conditional';
        req.signal = signal;
      }
      return navigator.credentials.get(req);
    }).then(function (cred) {
      if (cred) finish(form, cred);
    });
  }

  function ceremonyError(form, err) {
    if (err && err.name === 'AbortError') return; // replaced by another request
    if (err && err.name === 'NotAllowedError') {
      showError(form, 'The passkey request was cancelled or timed out. Try again.');
      return;
    }
    if (err && err.name === 'InvalidStateError') {
      showError(form, 'This passkey is already registered.');
      return;
    }
    showError(form, (err && err.message) || 'The passkey could not be used.');
  }

  document.querySelectorAll('form[data-webauthn]').forEach(function (form) {
    form.hidden = false;
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      if (form.querySelector('input[name=response]').value) return;
      if (conditional) {
        conditional.abort();
        conditional = null;
      }
      var p = form.querySelector('[data-webauthn-error]');
      if (p) p.hidden = true;
      run(form, null).catch(function (err) { ceremonyError(form, err); });
    });
  });

  // Conditional mediation: the browser offers passkeys in the email field's
  // autofill on the sign-in page.
  var discover = document.querySelector('form[data-webauthn=discover][data-conditional]');
  if (discover && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (!ok) return;
      conditional = new AbortController();
      run(discover, conditional.signal).catch(function (err) { ceremonyError(discover, err); });
    });
  }
})();
