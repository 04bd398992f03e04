package org.ferry.server.internal.federation;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import org.ferry.ops.log.OneLineLogs;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.PaddingBuckets;
import org.ferry.proto.RoutingKeys;
import org.ferry.proto.RoutingSeal;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.FederatedItem;
import org.ferry.proto.v1.ItemResult;
import org.ferry.proto.v1.Routing;
import org.ferry.proto.v1.SendRouting;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.MailboxManager;
import org.ferry.server.internal.metrics.ServerMetrics;
import org.ferry.server.internal.store.MailboxStore;
import org.ferry.server.internal.store.SeenMark;
import org.ferry.server.internal.store.StoreException;
import org.ferry.server.internal.time.ServerClock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Items delivered to this server (by a peer, or by one of its own clients through Forward):
 * every check, then the append and the remembered id in one write. The same item from the same
 * peer is stored once: a retry after the write is answered OK from the {@code seen} records; a
 * retry while the first write is still running waits for it and gets its answer.
 */
final class InboundItems {
  private static final Logger log = LoggerFactory.getLogger(InboundItems.class);

  private final MailboxManager mailboxes;
  private final MailboxStore store;
  private final RoutingKeyring keys;
  private final ServerClock clock;
  private final ServerMetrics metrics;
  /** Items being written now, by peer | item id. */
  private final ConcurrentHashMap<ByteBuffer, CompletableFuture<ItemResult>> inFlight = new ConcurrentHashMap<>();

  InboundItems(MailboxManager mailboxes, MailboxStore store, RoutingKeyring keys, ServerClock clock,
      ServerMetrics metrics) {
    this.mailboxes = mailboxes;
    this.store = store;
    this.keys = keys;
    this.clock = clock;
    this.metrics = metrics;
  }

  /** Checks and stores one item from {@code peer}; never fails: the result says how it went. */
  CompletableFuture<ItemResult> deliver(byte[] peer, FederatedItem item) {
    String peerText = ServerAddress.fingerprintText(peer);
    ItemResult refused = check(item);
    if (refused != null) {
      metrics.federationRefused(peerText, reasonOf(refused));
      return CompletableFuture.completedFuture(refused);
    }
    byte[] itemId = item.getItemId().toByteArray();
    ByteBuffer key = ByteBuffer.wrap(org.ferry.server.internal.store.SeenMark.key(peer, itemId));
    CompletableFuture<ItemResult> mine = new CompletableFuture<>();
    CompletableFuture<ItemResult> first = inFlight.putIfAbsent(key, mine);
    if (first != null) {
      return first;
    }
    CompletableFuture<ItemResult> result;
    try {
      result = store.seenUntil(peer, itemId).isPresent()
          ? CompletableFuture.completedFuture(ok(item))
          : write(peer, item);
    } catch (RuntimeException e) {
      result = CompletableFuture.completedFuture(failure(item, e));
    }
    result.whenComplete((r, e) -> {
      inFlight.remove(key, mine);
      ItemResult done = r != null ? r : failure(item, e);
      if (done.getCode() == Status.Code.OK.value()) {
        metrics.federationStored(peerText);
      } else {
        metrics.federationRefused(peerText, reasonOf(done));
      }
      mine.complete(done);
    });
    return mine;
  }

  private CompletableFuture<ItemResult> write(byte[] peer, FederatedItem item) {
    byte[] itemId = item.getItemId().toByteArray();
    byte[] body = item.getBody().toByteArray();
    Routing routing;
    try {
      routing = keys.open(item.getRoutingKeyId(), item.getSealedRouting().toByteArray(),
          RoutingSeal.sendBinding(itemId, body));
    } catch (RoutingKeyring.RefusedException e) {
      return CompletableFuture.completedFuture(e.unknownKey
          ? result(item, Status.Code.FAILED_PRECONDITION, ErrorReasons.UNKNOWN_ROUTING_KEY, e.getMessage())
          : result(item, Status.Code.INVALID_ARGUMENT, "", e.getMessage()));
    }
    if (routing.getKindCase() != Routing.KindCase.SEND) {
      return CompletableFuture.completedFuture(
          result(item, Status.Code.INVALID_ARGUMENT, "", "the routing part is not for a send"));
    }
    SendRouting send = routing.getSend();
    if (send.getMailboxId().size() != MailboxId.LENGTH || send.getSendCapability().size() != 32) {
      return CompletableFuture.completedFuture(result(item, Status.Code.INVALID_ARGUMENT, "",
          "the routing part needs a 32-byte mailbox id and a 32-byte send capability"));
    }
    Instant expiresAt = Instant.ofEpochMilli(item.getExpiresAt());
    SeenMark mark = new SeenMark(peer, itemId, expiresAt.plus(RoutingKeys.CLOCK_SKEW));
    return mailboxes.deliverFederated(new MailboxId(send.getMailboxId().toByteArray()),
            send.getSendCapability().toByteArray(), itemId, body, expiresAt, mark)
        .handle((v, e) -> e == null ? ok(item) : failure(item, e));
  }

  /** The checks that need no key and no store; null if the item passes them. */
  private ItemResult check(FederatedItem item) {
    if (item.getItemId().size() != 16) {
      return result(item, Status.Code.INVALID_ARGUMENT, "", "item_id must be 16 bytes");
    }
    if (!PaddingBuckets.isBucketSize(item.getBody().size())) {
      return result(item, Status.Code.INVALID_ARGUMENT, "", "body must be one of the padding bucket sizes");
    }
    if (item.getSealedRouting().size() != RoutingSeal.SEALED_LENGTH) {
      return result(item, Status.Code.INVALID_ARGUMENT, "",
          "sealed_routing must be " + RoutingSeal.SEALED_LENGTH + " bytes");
    }
    if (item.getExpiresAt() <= clock.instant().toEpochMilli()) {
      return result(item, Status.Code.DEADLINE_EXCEEDED, ErrorReasons.EXPIRED, "the item's time ran out");
    }
    return null;
  }

  /** The reason, or the code's name when there is none: a metric label. */
  static String reasonOf(ItemResult r) {
    return r.getReason().isEmpty() ? Status.fromCodeValue(r.getCode()).getCode().name() : r.getReason();
  }

  private static ItemResult ok(FederatedItem item) {
    return ItemResult.newBuilder().setItemId(item.getItemId()).setCode(Status.Code.OK.value()).build();
  }

  static ItemResult result(FederatedItem item, Status.Code code, String reason, String message) {
    return ItemResult.newBuilder().setItemId(item.getItemId()).setCode(code.value()).setReason(reason)
        .setMessage(message).build();
  }

  private static ItemResult failure(FederatedItem item, Throwable e) {
    Throwable cause = e instanceof java.util.concurrent.CompletionException && e.getCause() != null ? e.getCause() : e;
    if (cause instanceof StatusRuntimeException s) {
      ItemResult.Builder b = ItemResult.newBuilder().setItemId(item.getItemId())
          .setCode(s.getStatus().getCode().value())
          .setReason(ErrorReasons.of(s).orElse(""))
          .setMessage(s.getStatus().getDescription() == null ? "" : s.getStatus().getDescription());
      ErrorReasons.retryAfter(s).ifPresent(d -> b.setRetryAfterMillis(d.toMillis()));
      return b.build();
    }
    if (cause instanceof StoreException s && s.diskFull()) {
      return result(item, Status.Code.RESOURCE_EXHAUSTED, ErrorReasons.SERVER_FULL, "the server's disk is full");
    }
    log.error("storing a federated item failed: {}", OneLineLogs.describe(cause));
    return result(item, Status.Code.UNAVAILABLE, "", "the server could not store the item; try again later");
  }
}
