import numpy as np
import pytest

from alice_voice.audio.frames import block_rms, continue_quiet, rms


def test_block_rms_is_each_whole_blocks_rms_in_order() -> None:
    samples = np.concatenate([np.full(4, 3, np.int16), np.full(4, -4, np.int16), np.array([100, 100], np.int16)])
    assert block_rms(samples, 4).tolist() == [3.0, 4.0]  # the part block [100, 100] is left out
    assert block_rms(samples, 8)[0] == pytest.approx(rms(samples[:8]))


def test_block_rms_of_less_than_a_block_is_empty() -> None:
    assert block_rms(np.zeros(3, np.int16), 4).shape == (0,)


@pytest.mark.parametrize(("samples", "more", "tail", "expected"), [
    ([9, 9, 1, 2], 5, 2, [9, 9, 1, 2, 1, 2, 1, 2, 1]),  # the last two samples, repeated
    ([9, 9, 1, 2], 0, 2, [9, 9, 1, 2]),  # nothing more to add
    ([5], 3, 4, [5, 5, 5, 5]),  # a tail longer than the audio: all of it
    ([], 3, 2, []),  # no audio: no quiet to carry on
])
def test_continue_quiet_carries_on_the_tail(samples: list[int], more: int, tail: int, expected: list[int]) -> None:
    out = continue_quiet(np.array(samples, np.int16), more, tail)
    assert out.dtype == np.int16 and out.tolist() == expected
