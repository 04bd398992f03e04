package org.ferry.sdk.cli.daemon;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Locale;
import org.ferry.sdk.Connectivity;
import org.ferry.sdk.DecryptionFailure;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.FerryListener;
import org.ferry.sdk.ReceivedMessage;

/**
 * A {@code subscribe}d connection: each {@link FerryListener} event becomes an {@code event}
 * notification. A message is handed over (and leaves the local inbox) only once the
 * subscriber acknowledged its notification; if it does not (it went away, answered
 * {@code "ok": false} or took over {@link DaemonServer#ACK_TIMEOUT}), the listener throws and
 * the message stays for another listener or a later receive.
 */
final class Subscription implements FerryListener {
  private final DaemonMethods.Call call;

  Subscription(DaemonMethods.Call call) {
    this.call = call;
  }

  private void send(String type, JsonObject event) {
    send(type, event, false);
  }

  private void send(String type, JsonObject event, boolean acknowledged) {
    JsonObject params = new JsonObject();
    params.addProperty("type", type);
    event.entrySet().forEach(e -> params.add(e.getKey(), e.getValue()));
    try {
      if (acknowledged) {
        call.hand("event", params);
      } else {
        call.notify("event", params);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static JsonObject contact(String label) {
    JsonObject o = new JsonObject();
    o.addProperty("contact", label);
    return o;
  }

  @Override
  public void onMessage(ReceivedMessage message) {
    send("message", JsonViews.message(message), true);
  }

  @Override
  public void onContactEstablished(String label) {
    send("contactEstablished", contact(label));
  }

  @Override
  public void onDecryptionFailure(DecryptionFailure failure) {
    JsonObject o = contact(failure.contactLabel());
    o.addProperty("kind", failure.kind().name().toLowerCase(Locale.ROOT));
    o.addProperty("messageId", failure.messageId());
    send("decryptionFailure", o);
  }

  @Override
  public void onSessionRestarted(String label) {
    send("sessionRestarted", contact(label));
  }

  @Override
  public void onSendAccepted(String label, String messageId) {
    send("sendAccepted", JsonViews.sent(label, messageId));
  }

  @Override
  public void onSendDelivered(String label, String messageId) {
    send("sendDelivered", JsonViews.sent(label, messageId));
  }

  @Override
  public void onSendFailed(String label, String messageId, FerryException failure) {
    JsonObject o = JsonViews.sent(label, messageId);
    o.addProperty("reason", failure.reason().name());
    o.addProperty("message", failure.getMessage());
    send("sendFailed", o);
  }

  @Override
  public void onIdentityChanged(String label, String newSafetyNumber) {
    JsonObject o = contact(label);
    o.addProperty("safetyNumber", newSafetyNumber);
    send("identityChanged", o);
  }

  @Override
  public void onConnectivityChanged(Connectivity state) {
    JsonObject o = new JsonObject();
    o.addProperty("connected", state.connected());
    o.addProperty("carrier", state.carrier().orElse(null));
    o.addProperty("nextRetry", state.nextRetry().map(Object::toString).orElse(null));
    o.addProperty("lastError", state.lastError().orElse(null));
    send("connectivity", o);
  }
}
