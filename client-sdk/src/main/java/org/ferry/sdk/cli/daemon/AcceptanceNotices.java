package org.ferry.sdk.cli.daemon;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.ferry.sdk.Contact;
import org.ferry.sdk.FerryClient;

/**
 * "X accepted your invitation" for the command line through the daemon. The daemon's
 * background loop takes acceptances as they come, and the SDK hands them only to listeners
 * present then (subscribers); a {@code receive} or {@code send} run in-process would have
 * printed them. So the daemon notes which contacts were invited, and the next receive or send
 * prints, once, those that have been established since.
 */
public final class AcceptanceNotices {
  private final FerryClient client;
  private final Set<String> invited = new HashSet<>();

  AcceptanceNotices(FerryClient client) {
    this.client = client;
    take();
  }

  /**
   * Notes the contacts invited now (after an {@code invite}: its acceptance cannot come before
   * the invitee has the invitation).
   */
  public synchronized void noteInvited() {
    for (Contact c : client.contacts()) {
      if (c.state() == Contact.State.INVITED) {
        invited.add(c.label());
      }
    }
  }

  /** The contacts established since the last call (labels), each once. */
  public synchronized List<String> take() {
    List<String> established = new ArrayList<>();
    Set<String> stillInvited = new HashSet<>();
    for (Contact c : client.contacts()) {
      if (c.state() == Contact.State.INVITED) {
        stillInvited.add(c.label());
      } else if (c.state() == Contact.State.ESTABLISHED && invited.contains(c.label())) {
        established.add(c.label());
      }
    }
    invited.clear();
    invited.addAll(stillInvited);
    return established;
  }
}
