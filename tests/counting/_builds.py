"""Constructors and inputs of every SpikingJelly layer and neuron class (shared by the coverage tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import layer, neuron
from spikingjelly.activation_based.neuron.few_spike import FewSpikeTable
from torch import nn

T, B = 3, 2


@dataclass
class Build:
    """A constructor and the input of one call (a tensor or a tuple of positional tensors)."""

    module: Callable[[], nn.Module]
    inputs: Callable[[], object]


def _r(*shape: int) -> Callable[[], torch.Tensor]:
    return lambda: torch.rand(*shape, generator=torch.Generator().manual_seed(0)) * 2


def _spk(*shape: int) -> Callable[[], torch.Tensor]:
    def make() -> torch.Tensor:
        return (torch.rand(*shape, generator=torch.Generator().manual_seed(0)) < 0.5).float()

    return make


def _unpool(dims: int) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[dims]

    def make() -> tuple[torch.Tensor, torch.Tensor]:
        return pool(_r(1, 2, *(4,) * dims)(), 2, return_indices=True)

    return make


def _fs_table() -> FewSpikeTable:
    return FewSpikeTable(theta=[1.0, 0.5], h=[1.0, 0.5], d=[1.0, 0.5])


def _flex_core(x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    v = v + x
    s = (v >= 1.0).to(x)
    return s, v - s


SJ_LAYER: dict[str, Build] = {
    "AdaptiveAvgPool1d": Build(lambda: layer.AdaptiveAvgPool1d(2), _r(B, 3, 8)),
    "AdaptiveAvgPool2d": Build(lambda: layer.AdaptiveAvgPool2d(2), _r(B, 3, 4, 4)),
    "AdaptiveAvgPool3d": Build(lambda: layer.AdaptiveAvgPool3d(2), _r(1, 2, 4, 4, 4)),
    "AvgPool1d": Build(lambda: layer.AvgPool1d(2), _r(B, 3, 8)),
    "AvgPool2d": Build(lambda: layer.AvgPool2d(2), _r(B, 3, 4, 4)),
    "AvgPool3d": Build(lambda: layer.AvgPool3d(2), _r(1, 2, 4, 4, 4)),
    "BatchNorm1d": Build(lambda: layer.BatchNorm1d(3), _r(B, 3)),
    "BatchNorm2d": Build(lambda: layer.BatchNorm2d(3), _r(B, 3, 4, 4)),
    "BatchNorm3d": Build(lambda: layer.BatchNorm3d(2), _r(B, 2, 2, 2, 2)),
    "BatchNormThroughTime1d": Build(lambda: layer.BatchNormThroughTime1d(T, 3, step_mode="m"), _r(T, B, 3)),
    "BatchNormThroughTime2d": Build(lambda: layer.BatchNormThroughTime2d(T, 3, step_mode="m"), _r(T, B, 3, 4, 4)),
    "BatchNormThroughTime3d": Build(lambda: layer.BatchNormThroughTime3d(T, 2, step_mode="m"),
                                    _r(T, B, 2, 2, 2, 2)),
    "ChannelQKAttention": Build(lambda: layer.ChannelQKAttention(8, 2), _spk(T, B, 8, 4)),
    "Conv1d": Build(lambda: layer.Conv1d(3, 4, 3), _r(B, 3, 8)),
    "Conv2d": Build(lambda: layer.Conv2d(3, 4, 3), _r(B, 3, 5, 5)),
    "Conv3d": Build(lambda: layer.Conv3d(2, 3, 2), _r(1, 2, 3, 3, 3)),
    "ConvTranspose1d": Build(lambda: layer.ConvTranspose1d(3, 4, 3), _r(B, 3, 5)),
    "ConvTranspose2d": Build(lambda: layer.ConvTranspose2d(3, 4, 3), _r(B, 3, 4, 4)),
    "ConvTranspose3d": Build(lambda: layer.ConvTranspose3d(2, 3, 2), _r(1, 2, 2, 2, 2)),
    "Delay": Build(lambda: layer.Delay(1), _r(B, 3)),
    "DropConnectLinear": Build(lambda: layer.DropConnectLinear(4, 3, samples_num=8), _r(B, 4)),
    "Dropout": Build(lambda: layer.Dropout(0.5).eval(), _r(B, 3)),
    "Dropout2d": Build(lambda: layer.Dropout2d(0.5).eval(), _r(B, 3, 4, 4)),
    "ElementWiseRecurrentContainer": Build(
        lambda: layer.ElementWiseRecurrentContainer(neuron.IFNode(), lambda x, y: x + y), _r(B, 3)),
    "Flatten": Build(layer.Flatten, _r(B, 3, 2)),
    "GradwithTrace": Build(lambda: layer.GradwithTrace(nn.Linear(4, 3)), _r(B, 4)),
    "GroupNorm": Build(lambda: layer.GroupNorm(2, 4), _r(B, 4, 3)),
    "Linear": Build(lambda: layer.Linear(4, 3), _r(B, 4)),
    "LinearRecurrentContainer": Build(lambda: layer.LinearRecurrentContainer(neuron.IFNode(), 4, 4), _r(B, 4)),
    "MaxPool1d": Build(lambda: layer.MaxPool1d(2), _r(B, 3, 8)),
    "MaxPool2d": Build(lambda: layer.MaxPool2d(2), _r(B, 3, 4, 4)),
    "MaxPool3d": Build(lambda: layer.MaxPool3d(2), _r(1, 2, 4, 4, 4)),
    "MaxUnpool1d": Build(lambda: layer.MaxUnpool1d(2), _unpool(1)),
    "MaxUnpool2d": Build(lambda: layer.MaxUnpool2d(2), _unpool(2)),
    "MaxUnpool3d": Build(lambda: layer.MaxUnpool3d(2), _unpool(3)),
    "MultiDimensionalAttention": Build(lambda: layer.MultiDimensionalAttention(T, 4, 1, 2), _r(T, B, 4, 4, 4)),
    "MultiStepContainer": Build(lambda: layer.MultiStepContainer(nn.Linear(4, 3)), _r(T, B, 4)),
    "NeuNorm": Build(lambda: layer.NeuNorm(3, 4, 4), _spk(B, 3, 4, 4)),
    "OTTTSequential": Build(lambda: layer.OTTTSequential(nn.Linear(4, 3), neuron.OTTTLIFNode()), _r(B, 4)),
    "PrintShapeModule": Build(layer.PrintShapeModule, _r(B, 3)),
    "QKAttention": Build(lambda: layer.QKAttention(8, 2), _spk(T, B, 8, 4)),
    "SeqToANNContainer": Build(lambda: layer.SeqToANNContainer(nn.Linear(4, 3)), _r(T, B, 4)),
    "SpikeCountToBinary": Build(lambda: layer.SpikeCountToBinary(2, always_convert=True),
                                lambda: torch.randint(0, 3, (T, B, 3)).float()),
    "SpikeDrivenSelfAttention": Build(lambda: layer.SpikeDrivenSelfAttention(8, 2), _spk(T, B, 8, 2, 2)),
    "SpikeTraceOp": Build(lambda: layer.SpikeTraceOp(nn.Linear(4, 3)), _r(B, 4)),
    "SpikingSelfAttention": Build(lambda: layer.SpikingSelfAttention(8, 2), _spk(T, B, 8, 4)),
    "StepModeContainer": Build(lambda: layer.StepModeContainer(False, "s", nn.Linear(4, 3)), _r(B, 4)),
    "SynapseFilter": Build(layer.SynapseFilter, _spk(B, 3)),
    "TLastMultiStepContainer": Build(lambda: layer.TLastMultiStepContainer(nn.Linear(4, 3)), _r(B, 4, T)),
    "TLastSeqToANNContainer": Build(lambda: layer.TLastSeqToANNContainer(nn.Linear(4, 3)), _r(B, 4, T)),
    "TemporalBinSum": Build(lambda: layer.TemporalBinSum(2, always_convert=True), _spk(4, B, 3)),
    "TemporalEffectiveBatchNorm1d": Build(lambda: layer.TemporalEffectiveBatchNorm1d(T, 3), _r(T, B, 3)),
    "TemporalEffectiveBatchNorm2d": Build(lambda: layer.TemporalEffectiveBatchNorm2d(T, 3), _r(T, B, 3, 4, 4)),
    "TemporalEffectiveBatchNorm3d": Build(lambda: layer.TemporalEffectiveBatchNorm3d(T, 2), _r(T, B, 2, 2, 2, 2)),
    "TemporalWiseAttention": Build(lambda: layer.TemporalWiseAttention(T, 1, 4), _r(T, B, 3, 4, 4)),
    "ThresholdDependentBatchNorm1d": Build(lambda: layer.ThresholdDependentBatchNorm1d(1.0, 1.0, 3), _r(T, B, 3)),
    "ThresholdDependentBatchNorm2d": Build(lambda: layer.ThresholdDependentBatchNorm2d(1.0, 1.0, 3),
                                           _r(T, B, 3, 4, 4)),
    "ThresholdDependentBatchNorm3d": Build(lambda: layer.ThresholdDependentBatchNorm3d(1.0, 1.0, 2),
                                           _r(T, B, 2, 2, 2, 2)),
    "TokenQKAttention": Build(lambda: layer.TokenQKAttention(8, 2), _spk(T, B, 8, 4)),
    "Upsample": Build(lambda: layer.Upsample(scale_factor=2, mode="bilinear"), _r(B, 1, 2, 2)),
    "VotingLayer": Build(lambda: layer.VotingLayer(2), _spk(B, 6)),
    "WSConv2d": Build(lambda: layer.WSConv2d(3, 4, 3), _r(B, 3, 5, 5)),
    "WSLinear": Build(lambda: layer.WSLinear(4, 3), _r(B, 4)),
}

SJ_NEURON: dict[str, Build] = {
    "ActivationAwareIFNode": Build(neuron.ActivationAwareIFNode, _r(B, 3)),
    "AdaptBaseNode": Build(neuron.IzhikevichNode, _r(B, 3)),  # abstract: its concrete subclass
    "BaseNode": Build(neuron.QIFNode, _r(B, 3)),  # abstract: a concrete subclass
    "CUBALIFNode": Build(neuron.CUBALIFNode, _r(B, 3)),
    "ComplementaryLIFNode": Build(neuron.ComplementaryLIFNode, _r(B, 3)),
    "DSRIFNode": Build(lambda: neuron.DSRIFNode(T=T), _r(T, B, 3)),
    "DSRLIFNode": Build(lambda: neuron.DSRLIFNode(T=T), _r(T, B, 3)),
    "EIFNode": Build(neuron.EIFNode, _r(B, 3)),
    "FewSpikeNode": Build(lambda: neuron.FewSpikeNode(_fs_table()), _r(B, 3)),
    "FlexSN": Build(lambda: neuron.FlexSN(_flex_core, 1), _r(T, B, 3)),
    "GatedLIFNode": Build(lambda: neuron.GatedLIFNode(T, inplane=3), _r(T, B, 3)),
    "HGNode": Build(lambda: neuron.HGNode([_fs_table(), _fs_table()], [0.5]), _r(B, 3)),
    "HalfThresholdIFNode": Build(neuron.HalfThresholdIFNode, _r(B, 3)),
    "IFNode": Build(neuron.IFNode, _r(B, 3)),
    "ILCBaseNode": Build(lambda: neuron.ILCIFNode(2, 3), _r(T, B, 6)),  # abstract: a concrete subclass
    "ILCCUBALIFNode": Build(lambda: neuron.ILCCUBALIFNode(2, 3), _r(T, B, 6)),
    "ILCIFNode": Build(lambda: neuron.ILCIFNode(2, 3), _r(T, B, 6)),
    "ILCLIFNode": Build(lambda: neuron.ILCLIFNode(2, 3), _r(T, B, 6)),
    "ILIFNode": Build(neuron.ILIFNode, _r(B, 3)),
    "IzhikevichNode": Build(neuron.IzhikevichNode, _r(B, 3)),
    "KLIFNode": Build(neuron.KLIFNode, _r(B, 3)),
    "LIAFNode": Build(lambda: neuron.LIAFNode(torch.relu, False), _r(B, 3)),
    "LIFNode": Build(neuron.LIFNode, _r(B, 3)),
    "MPBNBaseNode": Build(lambda: neuron.MPBNLIFNode(out_features=3), _r(B, 3)),
    "MPBNLIFNode": Build(lambda: neuron.MPBNLIFNode(out_features=3), _r(B, 3)),
    "MaskedPSN": Build(lambda: neuron.MaskedPSN(2, T, step_mode="m"), _r(T, B, 3)),
    "NoisyBaseNode": Build(lambda: neuron.NoisyCUBALIFNode(3, is_training=False, T=T), _r(T, B, 3)),
    "NoisyCUBALIFNode": Build(lambda: neuron.NoisyCUBALIFNode(3, is_training=False, T=T), _r(T, B, 3)),
    "NoisyILCBaseNode": Build(lambda: neuron.NoisyILCCUBALIFNode(2, 3, is_training=False, T=T), _r(T, B, 6)),
    "NoisyILCCUBALIFNode": Build(lambda: neuron.NoisyILCCUBALIFNode(2, 3, is_training=False, T=T), _r(T, B, 6)),
    "NoisyNonSpikingBaseNode": Build(lambda: neuron.NoisyNonSpikingIFNode(3, is_training=False, T=T), _r(T, B, 3)),
    "NoisyNonSpikingIFNode": Build(lambda: neuron.NoisyNonSpikingIFNode(3, is_training=False, T=T), _r(T, B, 3)),
    "NonSpikingBaseNode": Build(neuron.NonSpikingIFNode, _r(T, B, 3)),
    "NonSpikingIFNode": Build(neuron.NonSpikingIFNode, _r(T, B, 3)),
    "NonSpikingLIFNode": Build(neuron.NonSpikingLIFNode, _r(T, B, 3)),
    "OTTTLIFNode": Build(neuron.OTTTLIFNode, _r(B, 3)),
    "OutlierAwareThresholdNode": Build(lambda: neuron.OutlierAwareThresholdNode(_fs_table(), _fs_table(), 1.0),
                                       _r(B, 3)),
    "PSN": Build(lambda: neuron.PSN(T), _r(T, B, 3)),
    "ParametricLIFNode": Build(neuron.ParametricLIFNode, _r(B, 3)),
    "QIFNode": Build(neuron.QIFNode, _r(B, 3)),
    "RAFNode": Build(neuron.RAFNode, _r(B, 3)),
    "SLTTLIFNode": Build(neuron.SLTTLIFNode, _r(B, 3)),
    "STBIFNode": Build(lambda: neuron.STBIFNode(1.0, 4), _r(B, 3)),
    "SimpleBaseNode": Build(neuron.SimpleIFNode, _r(B, 3)),  # abstract: a concrete subclass
    "SimpleIFNode": Build(neuron.SimpleIFNode, _r(B, 3)),
    "SimpleLIFNode": Build(lambda: neuron.SimpleLIFNode(2.0, True), _r(B, 3)),
    "SlidingPSN": Build(lambda: neuron.SlidingPSN(2, step_mode="m"), _r(T, B, 3)),
    "TernaryIFNode": Build(neuron.TernaryIFNode, _r(B, 3)),
    "TernaryLIFNode": Build(neuron.TernaryLIFNode, _r(B, 3)),
}
