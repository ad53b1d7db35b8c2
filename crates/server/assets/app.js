// burnbox pages: the click, the end-to-end encryption, copy and the QR code. The pages work
// without this script (server-side encryption only); with it, secrets shared here are encrypted
// in the browser and the key travels only in the link's fragment, which browsers never send.
// The format (bbx1) is specified in docs/end-to-end.md.

import { qrSvg } from './qr.js';

const PREFIX = 'bbx1:';
const NONCE_BYTES = 12;
const KEY_BYTES = 32;
// Letters and digits without look-alikes (0/O, 1/l/I), and a few symbols most forms accept.
const PASSWORD_ALPHABET = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_.!@#%+=';
const PASSWORD_LENGTH = 20;

const $ = (id) => document.getElementById(id);
const body = document.body;
const publicUrl = body.dataset.publicUrl || location.origin;

function toBase64Url(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('not base64url');
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  return Uint8Array.from(atob(padded), (char) => char.charCodeAt(0));
}

/** Encrypts `text` with a fresh key: the bbx1 value to share and the key for the fragment. */
async function encrypt(text) {
  const rawKey = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  const key = await crypto.subtle.importKey('raw', rawKey, 'AES-GCM', false, ['encrypt']);
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce }, key, new TextEncoder().encode(text)),
  );
  const payload = new Uint8Array(NONCE_BYTES + sealed.length);
  payload.set(nonce);
  payload.set(sealed, NONCE_BYTES);
  return { value: PREFIX + toBase64Url(payload), fragment: toBase64Url(rawKey) };
}

/** Decrypts a bbx1 value with the key from the fragment; throws when either is wrong. */
async function decrypt(value, fragment) {
  if (!value.startsWith(PREFIX)) throw new Error('not an end-to-end value');
  const payload = fromBase64Url(value.slice(PREFIX.length));
  const rawKey = fromBase64Url(fragment);
  if (rawKey.length !== KEY_BYTES || payload.length < NONCE_BYTES + 16) throw new Error('malformed');
  const key = await crypto.subtle.importKey('raw', rawKey, 'AES-GCM', false, ['decrypt']);
  const plain = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: payload.subarray(0, NONCE_BYTES) },
    key,
    payload.subarray(NONCE_BYTES),
  );
  return new TextDecoder('utf-8', { fatal: true }).decode(plain);
}

function generatePassword() {
  // Rejection sampling keeps every character equally likely.
  const limit = 256 - (256 % PASSWORD_ALPHABET.length);
  let password = '';
  while (password.length < PASSWORD_LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(PASSWORD_LENGTH))) {
      if (byte < limit && password.length < PASSWORD_LENGTH) {
        password += PASSWORD_ALPHABET[byte % PASSWORD_ALPHABET.length];
      }
    }
  }
  return password;
}

function announce(text) {
  const region = $('announce');
  region.textContent = '';
  // A fresh text node makes screen readers speak the same words twice in a row too.
  requestAnimationFrame(() => { region.textContent = text; });
}

function showError(element, message) {
  element.textContent = message;
  element.hidden = false;
}

function clearError(element) {
  element.textContent = '';
  element.hidden = true;
}

/** `button` copies what `source()` returns; says so to screen readers. */
function wireCopy(button, source) {
  button.hidden = false;
  button.addEventListener('click', async () => {
    const text = source();
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // No clipboard permission (or an insecure origin): select it for the person to copy.
      const field = button.parentElement.querySelector('input, textarea') || $('secret-value');
      field.select();
      announce('Selected: press Ctrl+C or ⌘C to copy.');
      return;
    }
    const label = button.textContent;
    button.textContent = 'Copied';
    announce('Copied to the clipboard.');
    setTimeout(() => { button.textContent = label; }, 2000);
  });
}

/** Calls the JSON API with a form body; resolves to [response, answer]. */
async function callApi(path, fields, headers = {}) {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined && value !== '') form.set(name, value);
  }
  const response = await fetch(path, {
    method: 'POST',
    body: form,
    headers: { Accept: 'application/json', ...headers },
    credentials: 'omit',
    cache: 'no-store',
  });
  let answer = {};
  try {
    answer = await response.json();
  } catch {
    answer = { message: `the server answered ${response.status}` };
  }
  return [response, answer];
}

function errorText(answer) {
  return answer.error_id ? `${answer.message} (error id ${answer.error_id})` : answer.message;
}

function basicAuthorization(custid, token) {
  const bytes = new TextEncoder().encode(`${custid}:${token}`);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

function sharePage() {
  const form = $('share-form');
  const error = $('share-error');
  const generate = $('generate');
  const canEncrypt = Boolean(window.crypto && crypto.subtle);
  generate.hidden = false;
  generate.addEventListener('click', () => {
    $('secret').value = generatePassword();
    $('secret').focus();
    announce('A password was generated.');
  });
  wireCopy($('copy-link'), () => $('share-link').value);
  if ($('share-link').value) {
    // A result the server rendered (the form was posted without this script's help).
    $('share-qr').replaceChildren(qrSvg($('share-link').value, 'QR code of the link'));
  }
  if (!canEncrypt) {
    // WebCrypto exists only on https:// and localhost: the form posts to the server as is.
    return;
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError(error);
    const create = $('create');
    create.disabled = true;
    try {
      const headers = {};
      const custid = $('custid');
      if (custid) headers.Authorization = basicAuthorization(custid.value, $('apitoken').value);
      const sealed = await encrypt($('secret').value);
      const [response, answer] = await callApi('/api/v1/share', {
        secret: sealed.value,
        passphrase: $('passphrase').value,
        ttl: $('ttl').value,
      }, headers);
      if (!response.ok) {
        showError(error, errorText(answer));
        error.focus();
        return;
      }
      const link = `${publicUrl}/secret/${answer.secret_key}#${sealed.fragment}`;
      $('secret').value = '';
      $('passphrase').value = '';
      $('share-link').value = link;
      $('receipt-link').href = `${publicUrl}/receipt/${answer.metadata_key}#${sealed.fragment}`;
      $('e2e-note').textContent =
        'Encrypted in your browser: the key is the part of the link after “#”, which never reaches the server.';
      $('share-qr').replaceChildren(qrSvg(link, 'QR code of the link'));
      form.hidden = true;
      $('share-result').hidden = false;
      $('result-title').focus();
    } catch (failure) {
      showError(error, `The secret could not be shared: ${failure.message}`);
    } finally {
      create.disabled = false;
    }
  });
}

function secretPage() {
  const key = body.dataset.secretKey;
  const endToEnd = body.dataset.endToEnd === 'true';
  const form = $('reveal-form');
  if (!form) {
    // Revealed without JavaScript's help (the form post): only the copy button to wire.
    wireCopy($('copy-value'), () => $('secret-value').value);
    return;
  }
  const error = $('reveal-error');
  const fragment = location.hash.slice(1);
  if (endToEnd) {
    $('needs-js').hidden = true;
    if (!fragment || !(window.crypto && crypto.subtle)) {
      $('missing-key').hidden = false;
      return;
    }
    form.hidden = false;
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearError(error);
    const button = $('reveal');
    button.disabled = true;
    try {
      const passphrase = $('reveal-passphrase');
      const [response, answer] = await callApi(`/api/v1/secret/${encodeURIComponent(key)}`, {
        passphrase: passphrase ? passphrase.value : undefined,
      });
      if (response.status === 404) {
        // Gone meanwhile: the server's own page says so, in the same words as ever.
        location.replace(location.pathname);
        return;
      }
      if (!response.ok) {
        showError(error, errorText(answer));
        if (passphrase) passphrase.focus();
        return;
      }
      // The key leaves the address bar: a reload or a copied URL cannot reuse it.
      history.replaceState(null, '', location.pathname);
      let value = answer.value;
      if (endToEnd) {
        try {
          value = await decrypt(answer.value, fragment);
        } catch {
          form.hidden = true;
          showError($('missing-key'), 'The secret was opened but could not be decrypted: the key in the link does not match. It is now destroyed; ask the sender to share it again.');
          return;
        }
      }
      $('secret-value').value = value;
      form.hidden = true;
      $('one-time-warning').hidden = true;
      $('revealed').hidden = false;
      $('revealed-title').focus();
    } catch (failure) {
      showError(error, `The secret could not be revealed: ${failure.message}`);
    } finally {
      button.disabled = false;
    }
  });
  wireCopy($('copy-value'), () => $('secret-value').value);
}

function receiptPage() {
  const link = $('receipt-secret-link');
  const fragment = location.hash.slice(1);
  if (link && fragment && /^[A-Za-z0-9_-]+$/.test(fragment)) link.value = `${link.value}#${fragment}`;
}

// A revealed value must not come back from the back-forward cache or linger in a hidden tab.
addEventListener('pagehide', () => {
  const value = $('secret-value');
  if (value) value.value = '';
});
addEventListener('pageshow', (event) => {
  if (event.persisted && body.dataset.page === 'secret') location.reload();
});

({ share: sharePage, secret: secretPage, receipt: receiptPage })[body.dataset.page]?.();
