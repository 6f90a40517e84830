# The command run on the H200 (device tool, from the repository root; OUT = the output folder).
# bash: cd hwsim/calibrate && PYTHONUNBUFFERED=1 python3 - <<'P' ... P
import gpu_bench as g,csv,os,json
g._import_torch();t=g.torch;t.manual_seed(0)
from torch.profiler import profile,ProfilerActivity as A
O=os.environ['OUT'];e=g.environment();g.warm_up_clocks(3)
m=g.Llama();ops=g.Ops(True)
f=open(O+'/step_trace.csv','w');w=csv.writer(f)
w.writerow(['phase','batch','ctx','kv_buffers','step_us','rep','i','name','start_us','dur_us'])
R=[('decode',b,c) for c in (512,2048) for b in (1,16,128)]+[('decode',4,2048),('decode',64,512),('prefill',1,128),('prefill',1,512),('prefill',1,2048)]
for ph,b,c in R:
 d=ph=='decode';nb=m.alloc(b if d else 1,c+1 if d else c,80e9);T=b if d else c
 ids=t.randint(0,32000,(T,),device='cuda')
 pos=t.full((T,),c,device='cuda',dtype=t.int64) if d else t.arange(T,device='cuda')
 st=lambda:m.forward(ids,pos,c,ops,d)
 us=g.time_in_graph(lambda i:st(),1,target_ms=0.0,replays=7,max_reps=1)
 s=t.cuda.Stream();s.wait_stream(t.cuda.current_stream())
 with t.cuda.stream(s):st()
 t.cuda.current_stream().wait_stream(s);t.cuda.synchronize()
 G=t.cuda.CUDAGraph()
 with t.cuda.graph(G):st()
 G.replay();t.cuda.synchronize()
 for r in range(3):
  with profile(activities=[A.CUDA]) as p:
   G.replay();t.cuda.synchronize()
  ev=sorted([x for x in p.events() if x.device_type.name=='CUDA'],key=lambda x:x.time_range.start)
  if not ev:
   with profile(activities=[A.CUDA]) as p:
    st();t.cuda.synchronize()
   ev=sorted([x for x in p.events() if x.device_type.name=='CUDA'],key=lambda x:x.time_range.start);r=-1-r
  t0=ev[0].time_range.start
  for i,x in enumerate(ev):w.writerow([ph,b,c,nb,round(us,2),r,i,x.name[:120],round(x.time_range.start-t0,3),round(x.time_range.end-x.time_range.start,3)])
 f.flush();print(ph,b,c,round(us),len(ev),flush=True)
 del G;m.kv=[];t.cuda.empty_cache()
e['end']=g.environment()['nvidia_smi'];json.dump(e,open(O+'/env.json','w'),indent=1)
