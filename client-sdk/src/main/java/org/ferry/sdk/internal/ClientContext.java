package org.ferry.sdk.internal;

import com.google.protobuf.ByteString;
import io.grpc.StatusRuntimeException;
import java.security.KeyPair;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.proto.local.v1.LocalIdentity;
import org.ferry.proto.local.v1.OwnedMailbox;
import org.ferry.proto.v1.CreateMailboxRequest;
import org.ferry.proto.v1.DeleteMailboxRequest;
import org.ferry.proto.v1.ForwardingGrpc;
import org.ferry.proto.v1.InvitationsGrpc;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.sdk.internal.crypto.Kdf;
import org.ferry.proto.OwnerKeys;
import org.ferry.sdk.internal.dial.RouteBook;
import org.ferry.sdk.internal.net.ServerConnections;
import org.ferry.sdk.internal.signal.ProtocolStore;
import org.ferry.sdk.internal.store.LocalStore;
import org.signal.libsignal.protocol.IdentityKeyPair;
import org.signal.libsignal.protocol.SignalProtocolAddress;
import org.signal.libsignal.protocol.ecc.ECKeyPair;

/** What the SDK's parts share once a client is initialised. */
public record ClientContext(
    LocalStore store,
    ServerConnections net,
    Clock clock,
    SecureRandom random) {

  public static final int DEVICE_ID = 1;

  /** Our identity record as committed now. */
  public LocalIdentity identity() {
    try (LocalStore.Txn txn = store.begin()) {
      return LocalIdentityStore.require(txn);
    }
  }

  /** The identity key pair held in {@code identity}. */
  public static IdentityKeyPair keyPair(LocalIdentity identity) {
    try {
      return new IdentityKeyPair(identity.getIdentityKeyPair().toByteArray());
    } catch (org.signal.libsignal.protocol.InvalidKeyException e) {
      throw new IllegalStateException("stored identity key is unreadable", e);
    }
  }

  /** How each server is reached: bridge lines and their health. */
  public RouteBook routes() {
    return net.dialer().routes();
  }

  public ServerAddress homeServer() {
    return ServerAddress.parse(identity().getHomeServer());
  }

  public ProtocolStore protocol(LocalStore.Txn txn) {
    LocalIdentity id = LocalIdentityStore.require(txn);
    return new ProtocolStore(txn, keyPair(id), id.getRegistrationId());
  }

  /** The libsignal address of a contact: its random local id, so labels can change freely. */
  public static SignalProtocolAddress address(ContactRecord contact) {
    return new SignalProtocolAddress(contact.getId(), DEVICE_ID);
  }

  public byte[] randomBytes(int n) {
    byte[] b = new byte[n];
    random.nextBytes(b);
    return b;
  }

  /**
   * The Mailboxes service of the home server. The client talks to no other server: anything for
   * another server goes through the home server's {@link #forwarding()} (docs/sdk.md,
   * "Federation").
   */
  public MailboxesGrpc.MailboxesBlockingStub mailboxes() {
    return MailboxesGrpc.newBlockingStub(net.channel(homeServer()))
        .withDeadlineAfter(net.callTimeout().toMillis(), TimeUnit.MILLISECONDS);
  }

  /** The Invitations service of the home server. */
  public InvitationsGrpc.InvitationsBlockingStub invitations() {
    return InvitationsGrpc.newBlockingStub(net.channel(homeServer()))
        .withDeadlineAfter(net.callTimeout().toMillis(), TimeUnit.MILLISECONDS);
  }

  /** The Forwarding service of the home server: how items reach other servers. */
  public ForwardingGrpc.ForwardingBlockingStub forwarding() {
    return ForwardingGrpc.newBlockingStub(net.channel(homeServer()))
        .withDeadlineAfter(net.callTimeout().toMillis(), TimeUnit.MILLISECONDS);
  }

  /**
   * Whether {@code server} is our home server: the same pinned key (fingerprint), however its
   * host is written.
   */
  public boolean isHome(ServerAddress server) {
    return homeServer().sameKey(server);
  }

  /**
   * Deletes one of our mailboxes on the home server (where all of ours are made), with whatever
   * waits in it; a mailbox that is gone already counts as deleted.
   *
   * @throws org.ferry.sdk.FerryException UNREACHABLE and the like if the server cannot be asked
   */
  public void deleteMailbox(OwnedMailbox mailbox) {
    ServerAddress server = homeServer();
    byte[] id = mailbox.getMailboxId().toByteArray();
    byte[] signature = OwnerKeys.sign(
        OwnerKeys.privateKey(mailbox.getOwnerPrivateKey().toByteArray()), OwnerKeys.DELETE_MAILBOX_CONTEXT, id);
    try {
      mailboxes().deleteMailbox(DeleteMailboxRequest.newBuilder()
          .setMailboxId(mailbox.getMailboxId())
          .setSignature(ByteString.copyFrom(signature))
          .build());
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() != io.grpc.Status.Code.NOT_FOUND) {
        throw net.failure(server, e);
      }
    }
  }

  /**
   * Creates a mailbox on our home server, owned by a fresh key, accepting senders who hold
   * {@code sendCapability}. Nothing is stored locally: the caller keeps the result.
   */
  public OwnedMailbox createMailbox(byte[] sendCapability) {
    ServerAddress home = homeServer();
    String creationToken = identity().getCreationToken();
    KeyPair owner = OwnerKeys.generate();
    ECKeyPair seal = ECKeyPair.generate();
    try {
      byte[] id = mailboxes()
          .createMailbox(CreateMailboxRequest.newBuilder()
              .setOwnerKey(ByteString.copyFrom(OwnerKeys.encode(owner.getPublic())))
              .setSendCapabilityHash(ByteString.copyFrom(Kdf.sha256(sendCapability)))
              .setCreationToken(creationToken)
              .build())
          .getMailboxId()
          .toByteArray();
      return OwnedMailbox.newBuilder()
          .setServer(home.toString())
          .setMailboxId(ByteString.copyFrom(id))
          .setOwnerPrivateKey(ByteString.copyFrom(owner.getPrivate().getEncoded()))
          .setSealPrivateKey(ByteString.copyFrom(seal.getPrivateKey().serialize()))
          .build();
    } catch (StatusRuntimeException e) {
      throw net.failure(home, e);
    }
  }
}
