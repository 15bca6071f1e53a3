import numpy as np
import pytest

from alice_voice.audio.frames import block_rms, rms


def test_block_rms_is_each_whole_blocks_rms_in_order() -> None:
    samples = np.concatenate([np.full(4, 3, np.int16), np.full(4, -4, np.int16), np.array([100, 100], np.int16)])
    assert block_rms(samples, 4).tolist() == [3.0, 4.0]  # the part block [100, 100] is left out
    assert block_rms(samples, 8)[0] == pytest.approx(rms(samples[:8]))


def test_block_rms_of_less_than_a_block_is_empty() -> None:
    assert block_rms(np.zeros(3, np.int16), 4).shape == (0,)
