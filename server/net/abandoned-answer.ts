/**
 * Thrown when a primary must not answer: it lost its leadership after it may have
 * committed. The connection is closed without a reply, as if the primary had
 * crashed, so our client asks the new leader what happened instead of being told
 * something a deposed primary cannot know.
 */
export class AbandonedAnswer extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'AbandonedAnswer';
  }
}
