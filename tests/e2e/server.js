#!/usr/bin/env node
// Starts the telegram-test-api 4.2.1 Bot API emulator for cadrebot's end-to-end tests, with the
// gaps that python-telegram-bot 22 trips over filled in. Listens on 127.0.0.1 only.
//
//   node server.js [--port N] [--store-timeout SECONDS] [--bot-username NAME] [--lifetime SECONDS]
//
// Environment fallbacks: E2E_PORT, E2E_STORE_TIMEOUT, E2E_BOT_USERNAME, E2E_LIFETIME.
// --port 0 (the default) picks a free port. Once listening, prints exactly one line
//   READY http://127.0.0.1:<port>
// on stdout. The process exits by itself when its stdin closes (the test runner went away),
// on SIGTERM/SIGINT, or after --lifetime seconds (default 900), whichever comes first.
'use strict';

const { routes } = require('telegram-test-api/lib/routes');
const TelegramServer = require('telegram-test-api');

function option(name, envName, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  if (index !== -1 && index + 1 < process.argv.length) {
    return process.argv[index + 1];
  }
  return process.env[envName] !== undefined ? process.env[envName] : fallback;
}

const HOST = '127.0.0.1';
const port = Number(option('port', 'E2E_PORT', '0'));
const storeTimeout = Number(option('store-timeout', 'E2E_STORE_TIMEOUT', '3600'));
const botUsername = option('bot-username', 'E2E_BOT_USERNAME', 'CadreE2EBot');
const lifetime = Number(option('lifetime', 'E2E_LIFETIME', '900'));

const log = (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);

const seconds = (millis) => Math.floor(Number(millis) / 1000);

function botUser(token) {
  return {
    id: Number(String(token).split(':')[0]) || 1,
    is_bot: true, // telegram-test-api leaves it out; PTB's User requires it
    first_name: 'Cadre E2E',
    username: botUsername,
    can_join_groups: true,
    can_read_all_group_messages: false,
    supports_inline_queries: false,
  };
}

function parseJson(value) {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

// A stored bot message rendered the way Telegram answers sendMessage / editMessageText.
function asBotApiMessage(stored) {
  const message = stored.message;
  const result = {
    message_id: stored.messageId,
    date: seconds(stored.time), // the emulator answers in milliseconds
    chat: { id: Number(message.chat_id), first_name: 'Person', type: 'private' },
    from: botUser(stored.botToken),
    text: message.text,
  };
  if (stored.editedAt) {
    result.edit_date = seconds(stored.editedAt);
  }
  const markup = parseJson(message.reply_markup);
  if (markup && 'inline_keyboard' in markup) {
    result.reply_markup = markup;
  }
  return result;
}

function badRequest(res, description) {
  res.status(400).json({ ok: false, error_code: 400, description: `Bad Request: ${description}` });
}

// An edit method: finds the bot message it names, lets `change(stored, body)` edit it (false
// when nothing would change, which Telegram refuses), then answers with the edited message.
function editRoute(app, server, method, event, change) {
  app.all(`/bot:token/${method}`, (req, res) => {
    const body = TelegramServer.normalizeMessage({ ...(req.body || {}) });
    if (body.inline_message_id !== undefined) {
      res.json({ ok: true, result: true });
      return;
    }
    const stored = server.storage.botMessages.find(
      (item) =>
        item.botToken === req.params.token &&
        String(item.messageId) === String(body.message_id) &&
        String(item.message.chat_id) === String(body.chat_id),
    );
    if (!stored) {
      badRequest(res, 'message to edit not found');
      return;
    }
    if (!change(stored, body)) {
      badRequest(
        res,
        'message is not modified: specified new message content and reply markup are ' +
          'exactly the same as a current content and reply markup of the message',
      );
      return;
    }
    stored.editedAt = Date.now();
    server.emit(event);
    res.json({ ok: true, result: asBotApiMessage(stored) });
  });
}

// Counts getUpdates calls per token so the tests can tell that a bot process is polling.
const polls = new Map();

// Registered before the package's own routes, so these win.
const extraRoutes = [
  (app, server) => {
    app.all('/bot:token/getUpdates', (req, res) => {
      const token = req.params.token;
      polls.set(token, { count: (polls.get(token)?.count || 0) + 1, last: Date.now() });
      // Telegram's offset semantics (the package marks an update read as soon as it is
      // fetched): an update is confirmed by a later getUpdates whose offset is above its
      // update_id, and delivered again until then, so a bot killed between fetching and
      // confirming gets it again, as from api.telegram.org.
      const params = { ...(req.query || {}), ...(req.body || {}) };
      const offset = Number(params.offset || 0);
      const mine = server.storage.userMessages.filter((update) => update.botToken === token);
      if (offset) {
        for (const update of mine) {
          if (update.updateId < offset) update.isRead = true;
        }
      }
      const pending = mine.filter((update) => !update.isRead);
      res.json({ ok: true, result: pending.map((update) => TelegramServer.formatUpdate(update)) });
    });
    app.all('/bot:token/:method', (req, _res, next) => {
      if (req.params.method !== 'getUpdates') {
        const chat = req.body && req.body.chat_id !== undefined ? ` chat=${req.body.chat_id}` : '';
        log(`bot-api ${req.params.method}${chat}`);
      }
      next();
    });
  },
  (app) => {
    app.all('/bot:token/getMe', (req, res) => {
      res.json({ ok: true, result: botUser(req.params.token) });
    });
  },
  (app, server) => {
    app.all('/bot:token/sendMessage', (req, res) => {
      const body = req.body || {};
      if (body.chat_id === undefined || body.chat_id === '') {
        badRequest(res, 'chat_id is empty');
        return;
      }
      if (!body.text) {
        badRequest(res, 'message text is empty');
        return;
      }
      if (String(body.text).length > 4096) {
        badRequest(res, 'message is too long');
        return;
      }
      server.addBotMessage(body, req.params.token);
      res.json({ ok: true, result: asBotApiMessage(server.storage.botMessages.at(-1)) });
    });
  },
  (app, server) => {
    // Telegram answers `true`; the package answers `result: null`, which reads as a failure.
    app.all('/bot:token/deleteMessage', (req, res) => {
      const body = req.body || {};
      const deleted = server.deleteMessage(Number(body.chat_id), Number(body.message_id));
      if (!deleted) {
        badRequest(res, 'message to delete not found');
        return;
      }
      res.json({ ok: true, result: true });
    });
  },
  (app, server) => {
    // The package answers `result: null`, which PTB cannot turn into a Message.
    editRoute(app, server, 'editMessageText', 'EditedMessageText', (stored, body) => {
      const sameText = stored.message.text === body.text;
      const sameMarkup =
        JSON.stringify(parseJson(stored.message.reply_markup) || null) ===
        JSON.stringify(body.reply_markup || null);
      if (sameText && sameMarkup) {
        return false;
      }
      const { chat_id: _chat, message_id: _id, ...changes } = body;
      stored.message = { ...stored.message, ...changes };
      if (!('reply_markup' in body)) {
        delete stored.message.reply_markup; // Telegram drops the keyboard unless resent
      }
      return true;
    });
  },
  (app, server) => {
    // Also answered `result: null` by the package, and it never removed the keyboard.
    editRoute(app, server, 'editMessageReplyMarkup', 'EditedMessageReplyMarkup', (stored, body) => {
      const before = parseJson(stored.message.reply_markup) || null;
      const after = body.reply_markup || null;
      const empty = (markup) => !markup || !(markup.inline_keyboard || []).length;
      if (JSON.stringify(before) === JSON.stringify(after) || (empty(before) && empty(after))) {
        return false;
      }
      if (after) {
        stored.message = { ...stored.message, reply_markup: after };
      } else {
        delete stored.message.reply_markup;
      }
      return true;
    });
  },
  (app) => {
    app.all('/bot:token/answerCallbackQuery', (_req, res) => res.json({ ok: true, result: true }));
    for (const method of [
      'setMyCommands',
      'deleteMyCommands',
      'setChatMenuButton',
      'sendChatAction',
      'setMyDescription',
      'setMyShortDescription',
    ]) {
      app.all(`/bot:token/${method}`, (_req, res) => res.json({ ok: true, result: true }));
    }
    app.all('/bot:token/getMyCommands', (_req, res) => res.json({ ok: true, result: [] }));
    app.all('/bot:token/getWebhookInfo', (_req, res) =>
      res.json({ ok: true, result: { url: '', has_custom_certificate: false, pending_update_count: 0 } }),
    );
  },
  (app) => {
    // Person side: is a bot process polling this token? {token} -> {polls, last_poll_ms}
    app.post('/e2e/status', (req, res) => {
      const entry = polls.get(String((req.body && req.body.token) || '')) || {};
      res.json({ ok: true, result: { polls: entry.count || 0, last_poll_ms: entry.last || null } });
    });
    // Person side: a client request the package would crash on (its handlers are not awaited).
    app.post(['/sendMessage', '/sendCommand', '/sendCallback'], (req, res, next) => {
      const body = req.body || {};
      if (!body.botToken) {
        res.status(400).json({ ok: false, description: 'botToken is required' });
        return;
      }
      if (req.path === '/sendCommand' && !Array.isArray(body.entities)) {
        res.status(400).json({ ok: false, description: 'a command needs entities' });
        return;
      }
      next();
    });
  },
];
routes.unshift(...extraRoutes);

// Callback queries lack chat_instance (required by PTB); messages carry the emulator's
// botToken field, which Telegram never sends.
const formatUpdate = TelegramServer.formatUpdate;
TelegramServer.formatUpdate = (update) => {
  const formatted = formatUpdate(update);
  if (formatted.callback_query) {
    const query = formatted.callback_query;
    const chatId = query.message && query.message.chat ? query.message.chat.id : query.from.id;
    query.chat_instance = update.callbackQuery.chat_instance || `ci${chatId}`;
    if (query.message) {
      const { botToken: _token, ...message } = query.message;
      query.message = message;
    }
  }
  if (formatted.message) {
    const { botToken: _token, ...message } = formatted.message;
    formatted.message = message;
  }
  return formatted;
};

process.on('unhandledRejection', (error) => log(`unhandled rejection: ${error}`));

async function main() {
  const server = new TelegramServer({ port: port || 1, host: HOST, storeTimeout });
  server.config.port = port; // normalizeConfig turns 0 into 9000; 0 must mean "any free port"
  await server.start();
  const actual = server.server.address().port;
  server.config.apiURL = `http://${HOST}:${actual}`;
  process.stdout.write(`READY http://${HOST}:${actual}\n`);

  let stopping = false;
  const stop = async (why) => {
    if (stopping) {
      return;
    }
    stopping = true;
    log(`stopping: ${why}`);
    const force = setTimeout(() => process.exit(0), 3000);
    force.unref();
    await server.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.stdin.on('end', () => stop('stdin closed'));
  process.stdin.on('error', () => stop('stdin error'));
  process.stdin.resume();
  const watchdog = setTimeout(() => stop(`lifetime of ${lifetime} s is over`), lifetime * 1000);
  watchdog.unref();
}

main().catch((error) => {
  process.stderr.write(`emulator failed to start: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
