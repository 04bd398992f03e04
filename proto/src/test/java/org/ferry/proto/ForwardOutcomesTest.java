package org.ferry.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import org.ferry.proto.v1.ForwardOutcome;
import org.junit.jupiter.api.Test;

class ForwardOutcomesTest {
  @Test
  void anOutcomeRoundTripsThroughAOneKibibyteBody() throws Exception {
    ForwardOutcome outcome = ForwardOutcome.newBuilder()
        .setItemId(ByteString.copyFrom(new byte[16]))
        .setDestination("127.0.0.1:1#abc")
        .setResult(ForwardOutcome.Result.FAILED)
        .setCode(4).setReason(ErrorReasons.EXPIRED).setMessage("not delivered in time").setHop("home")
        .build();
    byte[] body = ForwardOutcomes.toBody(outcome);
    assertEquals(1024, body.length);
    assertEquals(outcome, ForwardOutcomes.fromBody(body));
  }

  @Test
  void bodiesOfOtherSizesOrLengthsAndOversizeOutcomesAreRefused() {
    assertThrows(InvalidProtocolBufferException.class, () -> ForwardOutcomes.fromBody(new byte[4096]));
    byte[] bad = new byte[1024];
    bad[0] = (byte) 0xff;
    assertThrows(InvalidProtocolBufferException.class, () -> ForwardOutcomes.fromBody(bad));
    assertThrows(IllegalArgumentException.class, () -> ForwardOutcomes.toBody(
        ForwardOutcome.newBuilder().setMessage("x".repeat(1100)).build()));
  }
}
