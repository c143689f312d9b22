import torch
import torch.nn.functional as F

from models_zoo.losses import triplet_semihard_loss


def test_triplet_loss_zero_when_margin_holds():
    # two identities at opposite poles: d(a,p)=0, d(a,n)=4 > margin
    e = F.normalize(torch.tensor([[1.0, 0], [1.0, 0], [-1.0, 0], [-1.0, 0]]), dim=1)
    assert triplet_semihard_loss(e, torch.tensor([0, 0, 1, 1]), margin=0.2).item() == 0.0


def test_triplet_loss_positive_when_collapsed():
    e = F.normalize(torch.ones(4, 2), dim=1)
    loss = triplet_semihard_loss(e, torch.tensor([0, 0, 1, 1]), margin=0.2)
    assert abs(loss.item() - 0.2) < 1e-5
